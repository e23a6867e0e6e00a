//! A private PostgreSQL cluster, so a machine with only the PostgreSQL
//! packages installed (no configured server) can run the server and the
//! tests: `initdb` once into a data directory, `pg_ctl start` on a loopback
//! port with trust auth for the superuser `postgres`, and `pg_ctl stop` by
//! the process that started it.
//!
//! Everything here blocks on child processes and the file system; the async
//! entry points ([`Database::from_env`], [`Cluster::start`],
//! [`Cluster::release`]) move that work to the blocking pool.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod cluster;

pub use cluster::{Cluster, Outcome};

/// The `DATABASE_URL` value asking for the private cluster even when a
/// server answers on [`DEFAULT_SERVER`].
pub const FORCE: &str = "embedded";

/// The variable naming the private cluster's data directory.
pub const DATA_DIR_VAR: &str = "EMBEDDED_PG_DATA";

/// The variable naming the private cluster's preferred port.
pub const PORT_VAR: &str = "EMBEDDED_PG_PORT";

/// Where the private cluster lives unless [`DATA_DIR_VAR`] says otherwise,
/// relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".autogpt-es/postgres";

/// The port the private cluster prefers; when it is taken, any free one.
pub const DEFAULT_PORT: u16 = 54329;

/// The superuser `initdb` creates, matching the default `DATABASE_URL`.
pub const SUPERUSER: &str = "postgres";

/// The database the server uses on the private cluster, as on the default
/// server (`DEFAULT_DATABASE_URL`).
pub const DATABASE: &str = "autogpt";

/// The address of the default server (`DEFAULT_DATABASE_URL`): when
/// `DATABASE_URL` is unset and something answers here, it is used as before.
pub const DEFAULT_SERVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 5432));

/// Who runs the cluster's programs when we are root and none is found.
const ROOT_STAND_IN: &str = "postgres";

/// Where the binaries of Debian's (and Ubuntu's) packages live, one
/// directory per major version: `<root>/<version>/bin`.
const VERSIONED_ROOTS: [&str; 1] = ["/usr/lib/postgresql"];

/// The server's log inside the data directory (the postgres user can write
/// there when we are root, and the directory is ours alone).
const LOG_FILE: &str = "postgres.log";

/// Written on every start and included from `postgresql.conf`, so a moved
/// data directory or a changed port needs no edit of the server's own file.
const MANAGED_CONF: &str = "autogpt-es.conf";

/// Longest Unix socket path (`sun_path` is 108 bytes with its NUL) with room
/// for the `/.s.PGSQL.<port>` PostgreSQL appends.
const MAX_SOCKET_DIR: usize = 107 - "/.s.PGSQL.65535".len();

/// How long a start, a stop or a cluster still starting up may take.
const WAIT: Duration = Duration::from_secs(60);

/// Why the private cluster is not available.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `initdb` and `pg_ctl` were not found; the message says what to
    /// install.
    #[error("{0}")]
    NotInstalled(String),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// Preparing, creating, starting or stopping the cluster failed.
    #[error("private PostgreSQL cluster in {dir}: {message}")]
    Failed {
        /// The data directory.
        dir: String,
        /// What went wrong, with the programs' output.
        message: String,
    },
}

/// Where the server's database comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The server `DATABASE_URL` names, or the default one, which answered.
    External,
    /// A private cluster with these settings.
    Private(Settings),
}

impl Database {
    /// `DATABASE_URL` decides when set (`embedded` asks for the private
    /// cluster); unset, the default server is used if it answers, else the
    /// private cluster.
    pub async fn from_env() -> Result<Self, Error> {
        match std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()).as_deref() {
            Some(FORCE) => {
                tracing::info!("DATABASE_URL={FORCE}: using a private PostgreSQL cluster");
                Ok(Self::Private(Settings::from_env()?))
            }
            Some(_) => Ok(Self::External),
            None if default_server_answers().await => Ok(Self::External),
            None => {
                tracing::info!(
                    "DATABASE_URL is unset and nothing answers on {DEFAULT_SERVER}: using a private PostgreSQL cluster"
                );
                Ok(Self::Private(Settings::from_env()?))
            }
        }
    }
}

/// Whether something accepts connections on [`DEFAULT_SERVER`] (a refused
/// connection answers at once; a filtered one within a second).
pub async fn default_server_answers() -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(DEFAULT_SERVER)).await,
        Ok(Ok(_))
    )
}

/// As [`default_server_answers`], for callers outside a runtime.
pub fn default_server_answers_blocking() -> bool {
    std::net::TcpStream::connect_timeout(&DEFAULT_SERVER, Duration::from_secs(1)).is_ok()
}

/// Where and how the private cluster runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Its data directory (made absolute by [`Settings::from_env`]).
    pub data_dir: PathBuf,
    /// The port on 127.0.0.1 it prefers; 0, or one taken: any free port.
    pub port: u16,
}

impl Settings {
    /// [`DATA_DIR_VAR`] and [`PORT_VAR`], with their defaults.
    pub fn from_env() -> Result<Self, Error> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::Config(format!("{DATA_DIR_VAR}: working directory: {e}")))?;
        Self::from_vars(|k| std::env::var(k).ok(), &cwd)
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>, cwd: &Path) -> Result<Self, Error> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let data_dir = cwd.join(var(DATA_DIR_VAR).unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let port = match var(PORT_VAR) {
            None => DEFAULT_PORT,
            Some(p) => p.parse().map_err(|_| Error::Config(format!("{PORT_VAR}: not a port: {p}")))?,
        };
        Ok(Self { data_dir, port })
    }
}

/// The `initdb` and `pg_ctl` of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `initdb`.
    pub initdb: PathBuf,
    /// `pg_ctl` (it finds `postgres` beside itself).
    pub pg_ctl: PathBuf,
}

impl Binaries {
    /// The first directory of `PATH` holding both, else the highest version
    /// under `/usr/lib/postgresql/<version>/bin` (Debian's packages do not
    /// put them on `PATH`); the error says what to install.
    pub fn find() -> Result<Self, Error> {
        let roots: Vec<&Path> = VERSIONED_ROOTS.iter().map(Path::new).collect();
        Self::find_in(std::env::var_os("PATH").as_deref(), &roots).ok_or_else(|| {
            Error::NotInstalled(not_installed_message(fs::read_to_string("/etc/os-release").ok().as_deref()))
        })
    }

    /// As [`Binaries::find`], over the given `PATH` value and roots of
    /// versioned installations.
    pub fn find_in(path: Option<&OsStr>, versioned_roots: &[&Path]) -> Option<Self> {
        // A relative PATH entry would depend on the working directory.
        let mut on_path = path.into_iter().flat_map(std::env::split_paths).filter(|d| d.is_absolute());
        if let Some(found) = on_path.find_map(|dir| Self::in_dir(&dir)) {
            return Some(found);
        }
        for root in versioned_roots {
            let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| Some((parse_version(entry.file_name().to_str()?)?, entry.path().join("bin"))))
                .collect();
            versions.sort();
            if let Some(found) = versions.iter().rev().find_map(|(_, dir)| Self::in_dir(dir)) {
                return Some(found);
            }
        }
        None
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let (initdb, pg_ctl) = (dir.join("initdb"), dir.join("pg_ctl"));
        (is_executable(&initdb) && is_executable(&pg_ctl)).then_some(Self { initdb, pg_ctl })
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `15` → `[15]`, `9.6` → `[9, 6]`; anything else is not a version.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// What to install, for the system `/etc/os-release` describes (`None`:
/// not a Linux system that says).
pub fn install_command(os_release: Option<&str>) -> &'static str {
    let Some(text) = os_release else { return "brew install postgresql" };
    let ids: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("ID=").or_else(|| line.strip_prefix("ID_LIKE=")))
        .flat_map(|value| value.trim_matches('"').split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let is = |name: &str| ids.iter().any(|id| id == name);
    if is("debian") || is("ubuntu") {
        "apt-get install postgresql"
    } else if is("fedora") || is("rhel") || is("centos") {
        "dnf install postgresql-server"
    } else if is("alpine") {
        "apk add postgresql"
    } else if is("arch") {
        "pacman -S postgresql"
    } else if is("suse") || is("opensuse") {
        "zypper install postgresql-server"
    } else {
        "apt-get install postgresql"
    }
}

/// The whole message for a machine without the binaries.
pub fn not_installed_message(os_release: Option<&str>) -> String {
    let install = install_command(os_release);
    let on = if install.starts_with("apt-get") { " on Debian/Ubuntu" } else { "" };
    format!(
        "no database: DATABASE_URL is unset or `{FORCE}`, and PostgreSQL's initdb and pg_ctl are not installed \
         (looked in PATH and {}/<version>/bin). Install PostgreSQL (`{install}`{on}) to let autogpt-es run a \
         private cluster, or set DATABASE_URL to a running server",
        VERSIONED_ROOTS[0]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("autogpt-es-embedded-unit-{}", uuid::Uuid::new_v4().simple()));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// Fake `initdb`/`pg_ctl` in `<root>/<sub>`, executable or not.
        fn install(&self, sub: &str, names: &[&str], mode: u32) -> PathBuf {
            let dir = self.0.join(sub);
            fs::create_dir_all(&dir).unwrap();
            for name in names {
                let file = dir.join(name);
                fs::write(&file, "#!/bin/sh\n").unwrap();
                fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            }
            dir
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const BOTH: [&str; 2] = ["initdb", "pg_ctl"];

    #[test]
    fn path_comes_first_then_the_highest_complete_version() {
        let s = Scratch::new();
        let on_path = s.install("path/bin", &BOTH, 0o755);
        let root = s.0.join("lib");
        s.install("lib/9.6/bin", &BOTH, 0o755);
        let v13 = s.install("lib/13/bin", &BOTH, 0o755);
        s.install("lib/16/bin", &["initdb"], 0o755); // no pg_ctl: incomplete
        s.install("lib/17/bin", &BOTH, 0o644); // not executable
        s.install("lib/notes/bin", &BOTH, 0o755); // not a version

        let path = std::env::join_paths([s.0.join("empty"), on_path.clone()]).unwrap();
        let found = Binaries::find_in(Some(&path), &[&root]).unwrap();
        assert_eq!(found.initdb, on_path.join("initdb"));

        let found = Binaries::find_in(Some(OsStr::new("/nonexistent:relative/bin")), &[&root]).unwrap();
        assert_eq!(found, Binaries { initdb: v13.join("initdb"), pg_ctl: v13.join("pg_ctl") });

        assert_eq!(Binaries::find_in(None, &[&s.0.join("none")]), None);
    }

    #[test]
    fn versions_order_numerically() {
        let mut versions =
            vec![parse_version("9.6").unwrap(), parse_version("15").unwrap(), parse_version("10").unwrap()];
        versions.sort();
        assert_eq!(versions, [vec![9, 6], vec![10], vec![15]]);
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn the_message_says_what_to_install() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        let ubuntu = "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n";
        let rocky = "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";
        assert_eq!(install_command(Some(debian)), "apt-get install postgresql");
        assert_eq!(install_command(Some(ubuntu)), "apt-get install postgresql");
        assert_eq!(install_command(Some(rocky)), "dnf install postgresql-server");
        assert_eq!(install_command(Some("ID=alpine\n")), "apk add postgresql");
        assert_eq!(install_command(Some("ID=arch\n")), "pacman -S postgresql");
        assert_eq!(install_command(None), "brew install postgresql");
        let message = not_installed_message(Some(debian));
        assert!(message.contains("`apt-get install postgresql` on Debian/Ubuntu"), "{message}");
        assert!(message.contains("set DATABASE_URL"), "{message}");
        assert!(message.contains("/usr/lib/postgresql/<version>/bin"), "{message}");
    }

    #[test]
    fn settings_name_the_data_directory_and_port() {
        let cwd = Path::new("/srv/app");
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            Settings::from_vars(|k| vars.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()), cwd)
        };
        let defaults = from(&[]).unwrap();
        assert_eq!(defaults, Settings { data_dir: cwd.join(".autogpt-es/postgres"), port: 54329 });
        let set = from(&[(DATA_DIR_VAR, "rel/pg"), (PORT_VAR, "0")]).unwrap();
        assert_eq!(set, Settings { data_dir: cwd.join("rel/pg"), port: 0 });
        assert_eq!(from(&[(DATA_DIR_VAR, "/var/pg"), (PORT_VAR, "")]).unwrap().data_dir, Path::new("/var/pg"));
        assert!(matches!(from(&[(PORT_VAR, "nope")]), Err(Error::Config(m)) if m.contains(PORT_VAR)));
    }
}
