//! The `metrics` setting of a plugin config: where to serve the metrics,
//! and the `connector` label. Written as an address (`"127.0.0.1:9464"`), a
//! bare port (`9464`, served on loopback), or a table with `address` and
//! `connector`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub address: SocketAddr,
    /// The `connector` label; `<plugin>-<id>` when not set, since a plugin
    /// is not told its connector's key.
    pub connector: Option<String>,
}

/// A plugin config with a `metrics` setting, so the connector shells can
/// start the endpoint without knowing the config's shape.
pub trait Metered {
    fn metrics(&self) -> Option<&MetricsSettings>;
}

impl MetricsSettings {
    pub fn connector_label(&self, plugin: &str, id: u32) -> String {
        self.connector
            .clone()
            .unwrap_or_else(|| format!("{plugin}-{id}"))
    }
}

/// A port alone means loopback: metrics stay off the network unless an
/// address says otherwise.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        return parse_address(port);
    }
    text.parse().map_err(|_| {
        format!("`metrics`: `{text}` is not an address such as \"127.0.0.1:9464\" or a port such as 9464")
    })
}

fn port(value: i64) -> Result<SocketAddr, String> {
    u16::try_from(value)
        .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .map_err(|_| format!("`metrics`: {value} is not a port"))
}

struct SettingsVisitor;

impl<'de> Visitor<'de> for SettingsVisitor {
    type Value = MetricsSettings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "`metrics` as an address such as \"127.0.0.1:9464\", a port, or { address = ..., connector = \"name\" }",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MetricsSettings, E> {
        Ok(MetricsSettings {
            address: parse_address(v).map_err(E::custom)?,
            connector: None,
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MetricsSettings, E> {
        Ok(MetricsSettings {
            address: port(v).map_err(E::custom)?,
            connector: None,
        })
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MetricsSettings, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetricsSettings, A::Error> {
        let mut address = None;
        let mut connector = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "address" => address = Some(map.next_value::<AddressOnly>()?.0),
                "connector" => {
                    let name: String = map.next_value()?;
                    if name.trim().is_empty() {
                        return Err(de::Error::custom("`metrics.connector` must not be empty"));
                    }
                    connector = Some(name);
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "`metrics` has no setting `{other}` (it takes `address` and `connector`)"
                    )));
                }
            }
        }
        Ok(MetricsSettings {
            address: address.ok_or_else(|| de::Error::custom("`metrics` needs an `address`"))?,
            connector,
        })
    }
}

impl<'de> Deserialize<'de> for MetricsSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingsVisitor)
    }
}

/// The `address` inside the table form: an address or a port.
struct AddressOnly(SocketAddr);

impl<'de> Deserialize<'de> for AddressOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let settings = deserializer.deserialize_any(SettingsVisitor)?;
        if settings.connector.is_some() {
            return Err(de::Error::custom(
                "`metrics.address` takes an address or a port",
            ));
        }
        Ok(Self(settings.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        metrics: Option<MetricsSettings>,
    }

    fn parse(text: &str) -> Result<Option<MetricsSettings>, String> {
        toml::from_str::<Config>(text)
            .map(|c| c.metrics)
            .map_err(|e| e.to_string())
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn off_unless_set_and_loopback_for_a_bare_port() {
        assert_eq!(parse("").unwrap(), None);
        for text in [
            "metrics = 9464",
            "metrics = \"9464\"",
            "metrics = \":9464\"",
        ] {
            let settings = parse(text).unwrap().unwrap();
            assert_eq!(settings.address, addr("127.0.0.1:9464"), "{text}");
            assert_eq!(
                settings.connector_label("nats_jetstream_sink", 3),
                "nats_jetstream_sink-3"
            );
        }
        let settings = parse("metrics = \"localhost:9000\"").unwrap().unwrap();
        assert_eq!(settings.address, addr("127.0.0.1:9000"));
        let settings = parse("metrics = \"0.0.0.0:9464\"").unwrap().unwrap();
        assert_eq!(settings.address, addr("0.0.0.0:9464"));
    }

    #[test]
    fn the_table_form_names_the_connector() {
        let settings = parse("[metrics]\naddress = \"[::1]:9100\"\nconnector = \"orders_to_nats\"")
            .unwrap()
            .unwrap();
        assert_eq!(settings.address, addr("[::1]:9100"));
        assert_eq!(settings.connector_label("x", 1), "orders_to_nats");
        let settings = parse("metrics = { address = 9100 }").unwrap().unwrap();
        assert_eq!(settings.address, addr("127.0.0.1:9100"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        for (text, expected) in [
            ("metrics = \"example:9464\"", "is not an address"),
            ("metrics = 70000", "70000 is not a port"),
            ("metrics = -1", "-1 is not a port"),
            ("metrics = true", "an address such as"),
            ("metrics = { connector = \"a\" }", "needs an `address`"),
            ("metrics = { address = 1, port = 2 }", "no setting `port`"),
            (
                "metrics = { address = 1, connector = \" \" }",
                "must not be empty",
            ),
        ] {
            let error = parse(text).unwrap_err();
            // Named in the message itself: a flattened config loses the path.
            let message = error.lines().last().unwrap_or_default();
            assert!(message.contains("`metrics"), "{text}: {error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
