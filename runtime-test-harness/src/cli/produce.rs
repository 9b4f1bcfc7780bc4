use super::TopicArgs;
use iggy_harness::topic_io;
use iggy_harness_store::StreamStore;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    topic: TopicArgs,
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// JSON lines to read ("-" for stdin).
    #[arg(long, conflicts_with = "generate")]
    file: Option<PathBuf>,
    /// Lines are envelopes {"id","headers","payload"} rather than bare payloads.
    #[arg(long)]
    envelope: bool,
    /// Generate this many JSON messages instead.
    #[arg(long)]
    generate: Option<u64>,
    #[arg(long, default_value_t = 256)]
    payload_size: usize,
}

pub fn run(args: ProduceArgs) -> Result<bool, String> {
    let ProduceArgs {
        topic: TopicArgs {
            data_dir,
            stream,
            topic,
        },
        partitions,
        file,
        envelope,
        generate,
        payload_size,
    } = args;
    let store = StreamStore::open(&data_dir).map_err(|e| e.to_string())?;
    store
        .ensure_topic(&stream, &topic, partitions)
        .map_err(|e| e.to_string())?;
    let written = match (file, generate) {
        (_, Some(count)) => {
            topic_io::produce_generated(&store, &stream, &topic, count, payload_size)?
        }
        (Some(path), None) if path.as_os_str() == "-" => {
            topic_io::produce_lines(&store, &stream, &topic, std::io::stdin().lock(), envelope)?
        }
        (Some(path), None) => {
            let file = std::fs::File::open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            topic_io::produce_lines(
                &store,
                &stream,
                &topic,
                std::io::BufReader::new(file),
                envelope,
            )?
        }
        (None, None) => return Err("give --file or --generate".into()),
    };
    store.sync().map_err(|e| e.to_string())?;
    eprintln!("produced {written} messages to {stream}/{topic}");
    Ok(true)
}
