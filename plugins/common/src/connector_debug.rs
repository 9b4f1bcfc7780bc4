//! `Debug` for connector types. Upstream's SDK requires it of every plugin
//! type; a connector holds its config and the config holds credentials, so
//! the output is the type's name and connector id, nothing else.

/// Implements `Debug` for a connector type that has an `id: u32` field.
#[macro_export]
macro_rules! connector_debug {
    ($type:ident) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($type))
                    .field("id", &self.id)
                    .finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    struct Connector {
        id: u32,
        #[allow(dead_code)]
        password: String,
    }

    connector_debug!(Connector);

    #[test]
    fn shows_the_id_and_nothing_of_the_config() {
        let connector = Connector {
            id: 7,
            password: "hunter2-secret".into(),
        };
        let shown = format!("{connector:?}");
        assert_eq!(shown, "Connector { id: 7, .. }");
        assert!(!format!("{connector:#?}").contains("hunter2"));
    }
}
