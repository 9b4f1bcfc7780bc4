//! Upstream's SDK refuses a connector type that is not `Debug`. This one must
//! refuse it too, or a plugin that builds here would not build against
//! upstream's with only its `Cargo.toml` changed.

#[test]
fn connector_types_are_held_to_upstream_bounds() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/plugin_bounds/debug_sink_and_source.rs");
    cases.compile_fail("tests/plugin_bounds/sink_without_debug.rs");
    cases.compile_fail("tests/plugin_bounds/source_without_debug.rs");
}
