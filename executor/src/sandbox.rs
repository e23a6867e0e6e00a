//! Rendering a template that could build values without bound in a child
//! process, under an address-space and a CPU-time limit. Fuel bounds a
//! render's steps and the output cap its text, but nothing in the template
//! engine bounds what one step allocates; a process can. Running out is the
//! child's end (the allocator aborts it), answered as the node's error; the
//! server never sees the allocation.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The argument that makes the server's binary a renderer.
pub const RENDER_COMMAND: &str = "render-template";

/// Address space a render may use.
const MEMORY_LIMIT_BYTES: u64 = 512 << 20;

/// CPU seconds a render may take (fuel stops a template long before).
const CPU_LIMIT_SECONDS: u64 = 5;

static RENDERER: OnceLock<PathBuf> = OnceLock::new();

/// Render unbounded templates with `binary RENDER_COMMAND` (the server's own
/// binary). Until this is called, they render in this process. The first
/// call wins.
pub fn use_renderer(binary: PathBuf) {
    let _ = RENDERER.set(binary);
}

#[derive(Serialize, Deserialize)]
struct Job {
    template: String,
    values: Map<String, Value>,
    autoescape: bool,
}

#[derive(Serialize, Deserialize)]
enum Rendered {
    Text(String),
    Error(String),
}

/// Render in a child; `None` when no renderer is known.
pub(crate) fn render(template: &str, values: &Map<String, Value>, autoescape: bool) -> Option<Result<String, String>> {
    let binary = RENDERER.get()?;
    let job = Job { template: template.to_owned(), values: values.clone(), autoescape };
    let run = || run_child(binary, &job);
    // A render takes a while: off the async worker when the runtime has
    // others to give its tasks to.
    let outcome = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    };
    Some(outcome)
}

fn run_child(binary: &PathBuf, job: &Job) -> Result<String, String> {
    let failed = |e: std::io::Error| {
        tracing::warn!(error = %e, "template renderer could not run");
        "Template rendering failed: the renderer could not run".to_owned()
    };
    let mut child = Command::new(binary)
        .arg(RENDER_COMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed)?;
    // The child reads all of its input before it writes anything, so
    // writing first and reading after cannot deadlock on full pipes.
    let sent = match (serde_json::to_vec(job), child.stdin.take()) {
        (Ok(input), Some(mut stdin)) => stdin.write_all(&input).map_err(failed),
        (Err(e), _) => Err(e.to_string()),
        (_, None) => Err("Template rendering failed: no pipe to the renderer".to_owned()),
    };
    if let Err(e) = sent {
        // Never leave a child behind unreaped.
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let output = child.wait_with_output().map_err(failed)?;
    if !output.status.success() {
        return Err(format!(
            "Template rendering exceeded its limits ({} MiB of memory, {CPU_LIMIT_SECONDS} s of CPU)",
            MEMORY_LIMIT_BYTES >> 20
        ));
    }
    match serde_json::from_slice(&output.stdout) {
        Ok(Rendered::Text(text)) => Ok(text),
        Ok(Rendered::Error(e)) => Err(e),
        Err(e) => Err(format!("Template rendering failed: {e}")),
    }
}

/// The child's side: limit this process, read a job on stdin, write its
/// result on stdout. Answers the exit code.
pub fn serve_child() -> u8 {
    if let Err(e) = limit(libc::RLIMIT_AS, MEMORY_LIMIT_BYTES).and_then(|()| limit(libc::RLIMIT_CPU, CPU_LIMIT_SECONDS))
    {
        eprintln!("cannot limit the renderer: {e}");
        return 3;
    }
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 2;
    }
    let Ok(job) = serde_json::from_slice::<Job>(&input) else { return 2 };
    drop(input);
    let rendered = match crate::template::render_here(&job.template, &job.values, job.autoescape) {
        Ok(text) => Rendered::Text(text),
        Err(e) => Rendered::Error(e),
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &rendered).and_then(|()| stdout.flush().map_err(serde_json::Error::io)) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

#[cfg(target_os = "linux")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_os = "linux"))]
type Resource = libc::c_int;

fn limit(resource: Resource, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit reads the struct we pass and touches nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
