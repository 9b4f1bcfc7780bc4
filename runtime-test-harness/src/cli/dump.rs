use super::TopicArgs;
use iggy_harness::topic_io;
use iggy_harness_store::StreamStore;

#[derive(clap::Args)]
pub struct DumpArgs {
    #[command(flatten)]
    topic: TopicArgs,
    #[arg(long)]
    partition: Option<u32>,
    #[arg(long, default_value_t = 0)]
    from: u64,
    #[arg(long, default_value_t = u64::MAX)]
    max: u64,
}

pub fn run(args: DumpArgs) -> Result<bool, String> {
    let TopicArgs {
        data_dir,
        stream,
        topic,
    } = args.topic;
    let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = topic_io::dump(
        &store,
        &stream,
        &topic,
        args.partition,
        args.from,
        args.max,
        &mut out,
    )?;
    drop(out);
    eprintln!("dumped {written} messages");
    Ok(true)
}
