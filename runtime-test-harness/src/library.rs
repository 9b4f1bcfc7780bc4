//! Finding and loading plugin libraries the way the Iggy connectors runtime
//! does, and the typed entry points of both plugin kinds.

use iggy_connector_sdk::LogCallback;
use iggy_connector_sdk::source::{SendCallback, SendCallbackV1};
use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub type SinkOpen = unsafe extern "C" fn(u32, *const u8, usize, LogCallback) -> i32;
pub type SinkConsume =
    unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, *const u8, usize) -> i32;
pub type SourceOpen =
    unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, LogCallback) -> i32;
pub type SourceHandleV1 = unsafe extern "C" fn(u32, SendCallbackV1) -> i32;
pub type SourceHandleV2 = unsafe extern "C" fn(u32, SendCallback) -> i32;
pub type SourceBatchResult = unsafe extern "C" fn(u32, u64, u8) -> i32;
pub type Close = unsafe extern "C" fn(u32) -> i32;
pub type Version = unsafe extern "C" fn() -> *const c_char;

pub const SINK_SYMBOLS: [&str; 4] = [
    "iggy_sink_open",
    "iggy_sink_consume",
    "iggy_sink_close",
    "iggy_sink_version",
];
pub const SOURCE_V1_SYMBOLS: [&str; 4] = [
    "iggy_source_open",
    "iggy_source_handle",
    "iggy_source_close",
    "iggy_source_version",
];
pub const SOURCE_V2_ONLY_SYMBOLS: [&str; 2] = ["iggy_source_handle_v2", "iggy_source_batch_result"];

/// Plugin ids are process-wide and start at 1, as in the runtime.
static NEXT_PLUGIN_ID: AtomicU32 = AtomicU32::new(1);

pub fn next_plugin_id() -> u32 {
    NEXT_PLUGIN_ID.fetch_add(1, Ordering::SeqCst)
}

/// Resolves a connector file's `path` like the runtime: the platform
/// extension is added when missing, and a relative path is tried as given,
/// then beside the harness binary, in the current directory and the system
/// library directories.
pub fn resolve_path(configured: &str) -> Result<PathBuf, String> {
    let mut path = PathBuf::from(configured);
    if path
        .extension()
        .is_none_or(|ext| ext != std::env::consts::DLL_EXTENSION)
    {
        path = PathBuf::from(format!("{configured}.{}", std::env::consts::DLL_EXTENSION));
    }
    if path.is_absolute() {
        return path
            .is_file()
            .then_some(path.clone())
            .ok_or_else(|| format!("plugin library {} does not exist", path.display()));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let cwd = std::env::current_dir().ok();
    let system = [
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/usr/local/lib",
        "/usr/local/lib64",
    ];
    let candidates = std::iter::once(path.clone())
        .chain(exe_dir.map(|dir| dir.join(&path)))
        .chain(cwd.map(|dir| dir.join(&path)))
        .chain(system.iter().map(|dir| Path::new(dir).join(&path)));
    let mut tried = Vec::new();
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(format!(
        "plugin library `{configured}` not found (tried {})",
        tried.join(", ")
    ))
}

pub struct Library {
    pub path: PathBuf,
    inner: libloading::Library,
}

static LOADED: Mutex<Option<HashMap<PathBuf, Arc<Library>>>> = Mutex::new(None);

/// Loads a library once per path; several connector instances share it.
pub fn load(path: &Path) -> Result<Arc<Library>, String> {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(library) = loaded.get(&key) {
        return Ok(Arc::clone(library));
    }
    // SAFETY: loading runs the library's initializers; plugins are trusted code, as in the runtime.
    let inner = unsafe { libloading::Library::new(&key) }
        .map_err(|error| format!("cannot load {}: {error}", key.display()))?;
    let library = Arc::new(Library {
        path: key.clone(),
        inner,
    });
    loaded.insert(key, Arc::clone(&library));
    Ok(library)
}

impl Library {
    fn symbol<T: Copy>(&self, name: &str) -> Option<T> {
        // SAFETY: the caller names the type the ABI defines for `name`; the
        // pointer stays valid while `self` (kept in an Arc) is loaded.
        unsafe {
            self.inner
                .get::<T>(name.as_bytes())
                .ok()
                .map(|symbol| *symbol)
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.symbol::<*const ()>(name).is_some()
    }

    fn require<T: Copy>(&self, name: &str) -> Result<T, String> {
        self.symbol(name)
            .ok_or_else(|| format!("{} does not export {name}", self.path.display()))
    }

    pub fn sink_api(self: &Arc<Self>) -> Result<SinkApi, String> {
        Ok(SinkApi {
            open: self.require("iggy_sink_open")?,
            consume: self.require("iggy_sink_consume")?,
            close: self.require("iggy_sink_close")?,
            version: self.require("iggy_sink_version")?,
            _library: Arc::clone(self),
        })
    }

    pub fn source_api(self: &Arc<Self>) -> Result<SourceApi, String> {
        let handle_v2 = self.symbol("iggy_source_handle_v2");
        let batch_result = self.symbol("iggy_source_batch_result");
        let handle_v1 = self.symbol("iggy_source_handle");
        let protocol = match (handle_v2, batch_result, handle_v1) {
            (Some(handle), Some(result), _) => SourceProtocol::V2 { handle, result },
            (_, _, Some(handle)) => SourceProtocol::V1 { handle },
            _ => {
                return Err(format!(
                    "{} exports neither iggy_source_handle_v2 with iggy_source_batch_result nor iggy_source_handle",
                    self.path.display()
                ));
            }
        };
        Ok(SourceApi {
            open: self.require("iggy_source_open")?,
            protocol,
            close: self.require("iggy_source_close")?,
            version: self.require("iggy_source_version")?,
            _library: Arc::clone(self),
        })
    }
}

/// Which source protocol the harness speaks, as the runtime generations do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SourceProtocolChoice {
    /// v2 when the library exports it, else v1 (what a 0.5.x runtime does).
    #[default]
    Newest,
    /// v1 only, as the 0.4.x runtime, even when the library also exports v2.
    V1,
}

impl Library {
    /// The source entry points the chosen runtime generation would call.
    pub fn source_api_for(
        self: &Arc<Self>,
        choice: SourceProtocolChoice,
    ) -> Result<SourceApi, String> {
        let mut api = self.source_api()?;
        if choice == SourceProtocolChoice::V1 {
            let handle = self.symbol("iggy_source_handle").ok_or_else(|| {
                format!(
                    "{} does not export iggy_source_handle (v1)",
                    self.path.display()
                )
            })?;
            api.protocol = SourceProtocol::V1 { handle };
        }
        Ok(api)
    }
}

/// Reads a plugin's static version string.
pub fn read_version(version: Version) -> Result<String, String> {
    // SAFETY: the ABI says the pointer is a static NUL-terminated string or null.
    let pointer = unsafe { version() };
    if pointer.is_null() {
        return Err("version pointer is null".to_string());
    }
    // SAFETY: non-null and NUL-terminated per the ABI.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map(str::to_string)
        .map_err(|_| "version is not UTF-8".to_string())
}

/// A sink's entry points; holds its library loaded.
#[derive(Clone)]
pub struct SinkApi {
    pub open: SinkOpen,
    pub consume: SinkConsume,
    pub close: Close,
    pub version: Version,
    _library: Arc<Library>,
}

#[derive(Clone, Copy)]
pub enum SourceProtocol {
    V1 {
        handle: SourceHandleV1,
    },
    V2 {
        handle: SourceHandleV2,
        result: SourceBatchResult,
    },
}

impl SourceProtocol {
    pub fn name(&self) -> &'static str {
        match self {
            SourceProtocol::V1 { .. } => "v1",
            SourceProtocol::V2 { .. } => "v2",
        }
    }
}

/// A source's entry points; the newest protocol the library exports is used.
#[derive(Clone)]
pub struct SourceApi {
    pub open: SourceOpen,
    pub protocol: SourceProtocol,
    pub close: Close,
    pub version: Version,
    _library: Arc<Library>,
}
