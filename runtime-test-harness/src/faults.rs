//! Fault injection, given as `--fault name=value` on the command line.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Source: Nack every Nth batch without storing it (as if sending to Iggy failed).
    pub nack_every: u64,
    /// Source: store every Nth batch but fail its state save, so it is Nacked.
    pub fail_state_save_every: u64,
    /// Source: wait this long before answering each batch.
    pub delay_result: Duration,
    /// Source: the Nth batch the worker takes waits this long before it is
    /// stored (after the callback returned, so the plugin's SDK is waiting
    /// for its answer meanwhile).
    pub delay_store: Option<(u64, Duration)>,
    /// Sink: treat every Nth batch as failed without calling `consume`.
    pub fail_sink_every: u64,
    /// Sink: after every Nth successful batch, skip the commit and deliver it again.
    pub redeliver_every: u64,
    /// Sink: replace the first payload of every Nth batch with bytes its schema cannot decode.
    pub corrupt_every: u64,
}

pub const NAMES: &str = "nack-every=N, fail-state-save-every=N, delay-result=DURATION, delay-store=N:DURATION, fail-sink-every=N, redeliver-every=N, corrupt-every=N";

impl Faults {
    pub fn parse(specs: &[String]) -> Result<Self, String> {
        let mut faults = Faults::default();
        for spec in specs {
            let (name, value) = spec
                .split_once('=')
                .ok_or_else(|| format!("fault `{spec}` must be name=value ({NAMES})"))?;
            let count = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("fault {name}: `{value}` is not a whole number"))
            };
            match name {
                "nack-every" => faults.nack_every = count()?,
                "fail-state-save-every" => faults.fail_state_save_every = count()?,
                "fail-sink-every" => faults.fail_sink_every = count()?,
                "redeliver-every" => faults.redeliver_every = count()?,
                "corrupt-every" => faults.corrupt_every = count()?,
                "delay-store" => {
                    let (nth, delay) = value.split_once(':').ok_or_else(|| {
                        format!("fault delay-store: `{value}` must be N:DURATION (e.g. 1:31s)")
                    })?;
                    let nth = nth
                        .parse::<u64>()
                        .map_err(|_| format!("fault delay-store: `{nth}` is not a whole number"))?;
                    let delay = humantime::parse_duration(delay)
                        .map_err(|e| format!("fault delay-store: {e}"))?;
                    faults.delay_store = Some((nth, delay));
                }
                "delay-result" => {
                    faults.delay_result = humantime::parse_duration(value)
                        .map_err(|e| format!("fault delay-result: {e}"))?;
                }
                _ => return Err(format!("unknown fault `{name}` (known: {NAMES})")),
            }
        }
        Ok(faults)
    }
}

/// True on the Nth, 2Nth, ... occurrence; `every = 0` never fires.
pub fn hits(every: u64, count: u64) -> bool {
    every != 0 && count.is_multiple_of(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_faults_and_rejects_others() {
        let faults = Faults::parse(&["nack-every=3".into(), "delay-result=250ms".into()]).unwrap();
        assert_eq!(faults.nack_every, 3);
        assert_eq!(faults.delay_result, Duration::from_millis(250));
        assert!(
            Faults::parse(&["nack-every".into()])
                .unwrap_err()
                .contains("name=value")
        );
        assert!(
            Faults::parse(&["boom=1".into()])
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(
            Faults::parse(&["nack-every=x".into()])
                .unwrap_err()
                .contains("whole number")
        );
        assert!(hits(3, 6) && !hits(3, 5) && !hits(0, 0));
        let delayed = Faults::parse(&["delay-store=2:31s".into()]).unwrap();
        assert_eq!(delayed.delay_store, Some((2, Duration::from_secs(31))));
        assert!(
            Faults::parse(&["delay-store=31s".into()])
                .unwrap_err()
                .contains("N:DURATION")
        );
    }
}
