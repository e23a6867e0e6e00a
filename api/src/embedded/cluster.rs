//! Creating, starting, reusing and stopping the private cluster, as the
//! data directory's owner when this process runs as root.

use super::*;

/// What starting the private cluster found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The data directory was empty: `initdb`, then started.
    Created,
    /// The cluster existed and was stopped: started.
    Started,
    /// The cluster was running already (another process started it): used
    /// as it is, and left running.
    Reused,
}

/// A running private cluster.
#[derive(Debug)]
pub struct Cluster {
    data_dir: PathBuf,
    port: u16,
    binaries: Binaries,
    owner: Option<Owner>,
    outcome: Outcome,
}

/// The user the cluster's programs run as when we are root (`initdb` and
/// `pg_ctl` refuse root).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    name: String,
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// Start (creating it first if needed) or find running the cluster of
    /// `settings`, on the blocking pool.
    pub async fn start(settings: Settings) -> Result<Self, Error> {
        let dir = settings.data_dir.display().to_string();
        tokio::task::spawn_blocking(move || Self::start_blocking(&settings))
            .await
            .map_err(|e| Error::Failed { dir, message: e.to_string() })?
    }

    /// As [`Cluster::start`], on this thread.
    pub fn start_blocking(settings: &Settings) -> Result<Self, Error> {
        let fail = |message: String| Error::Failed { dir: settings.data_dir.display().to_string(), message };
        let binaries = Binaries::find()?;
        tracing::info!(
            initdb = %binaries.initdb.display(),
            pg_ctl = %binaries.pg_ctl.display(),
            version = %version(&binaries.pg_ctl),
            "PostgreSQL binaries"
        );
        let parent = settings.data_dir.parent().ok_or_else(|| fail("not a directory path".into()))?;
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(|e| fail(format!("create {}: {e}", parent.display())))?;
            // The default lives in the working directory, often a checkout.
            let _ = fs::write(parent.join(".gitignore"), "*\n");
        }
        // Two processes starting one cluster at once (two servers, test
        // binaries) would both run initdb or pg_ctl start: one at a time.
        let mut lock_path = settings.data_dir.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = fs::File::create(&lock_path).map_err(|e| fail(format!("{}: {e}", lock_path.display())))?;
        lock.lock().map_err(|e| fail(format!("lock {}: {e}", lock_path.display())))?;

        let exists = settings.data_dir.join("PG_VERSION").is_file();
        let owner = if effective_uid() == Some(0) {
            let owner = owner_for_root(&settings.data_dir, exists).map_err(fail)?;
            tracing::info!(
                user = %owner.name,
                "running as root, which initdb and pg_ctl refuse: they run as this user, who owns the data directory"
            );
            Some(owner)
        } else {
            None
        };
        let mut cluster =
            Self { data_dir: settings.data_dir.clone(), port: 0, binaries, owner, outcome: Outcome::Started };
        if !exists {
            cluster.create().map_err(fail)?;
            cluster.outcome = Outcome::Created;
        }
        // Compared with a running server's working directory below.
        cluster.data_dir = fs::canonicalize(&settings.data_dir).map_err(|e| fail(e.to_string()))?;
        if let Some(port) = cluster.running().map_err(fail)? {
            cluster.port = port;
            cluster.outcome = Outcome::Reused;
            tracing::info!(
                data_dir = %cluster.data_dir.display(),
                address = %cluster.address(),
                "reusing the PostgreSQL cluster already running there (this process leaves it running on exit)"
            );
            return Ok(cluster);
        }
        cluster.port = free_port(settings.port).map_err(|e| fail(format!("find a free port: {e}")))?;
        cluster.pg_start().map_err(fail)?;
        tracing::info!(
            data_dir = %cluster.data_dir.display(),
            address = %cluster.address(),
            log = %cluster.data_dir.join(LOG_FILE).display(),
            "started the PostgreSQL cluster (trust auth for user {SUPERUSER}, loopback only)"
        );
        Ok(cluster)
    }

    /// What the start found.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's URL without a database: `postgres://postgres@127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("postgres://{SUPERUSER}@{}", self.address())
    }

    /// The URL of `database` on it.
    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.server_url())
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Stop it if this process started it; a cluster found running belongs
    /// to whoever started it and stays up.
    pub async fn release(self) {
        if self.outcome == Outcome::Reused {
            tracing::info!(
                data_dir = %self.data_dir.display(),
                "left the PostgreSQL cluster running (this process did not start it)"
            );
            return;
        }
        if let Err(e) = self.stop().await {
            tracing::warn!(error = %e, "could not stop the PostgreSQL cluster");
        }
    }

    /// Stop it (fast shutdown: open sessions are cut), whoever started it.
    pub async fn stop(self) -> Result<(), Error> {
        let dir = self.data_dir.display().to_string();
        tokio::task::spawn_blocking(move || self.stop_blocking())
            .await
            .map_err(|e| Error::Failed { dir, message: e.to_string() })?
    }

    /// As [`Cluster::stop`], on this thread.
    pub fn stop_blocking(&self) -> Result<(), Error> {
        let mut stop = self.command(&self.binaries.pg_ctl);
        stop.arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-s", "-t"])
            .arg(WAIT.as_secs().to_string());
        run(stop, "pg_ctl stop")
            .map_err(|message| Error::Failed { dir: self.data_dir.display().to_string(), message })?;
        tracing::info!(data_dir = %self.data_dir.display(), "stopped the PostgreSQL cluster");
        Ok(())
    }

    /// One of the cluster's programs, as its owner when we are root.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        // The paths given are absolute; our working directory may be closed
        // to the postgres user.
        command.current_dir("/").stdin(Stdio::null());
        if let Some(owner) = &self.owner {
            // std drops the supplementary groups before switching user.
            command.uid(owner.uid).gid(owner.gid);
        }
        command
    }

    fn create(&self) -> Result<(), String> {
        let dir = &self.data_dir;
        if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(format!(
                "exists but holds no PostgreSQL cluster (no PG_VERSION); empty it or point {DATA_DIR_VAR} elsewhere"
            ));
        }
        fs::create_dir_all(dir).map_err(|e| format!("create: {e}"))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| format!("chmod: {e}"))?;
        if let Some(owner) = &self.owner {
            std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
                .map_err(|e| format!("chown to {}: {e}", owner.name))?;
            let mut probe = self.command(Path::new("test"));
            probe.arg("-w").arg(dir);
            if !probe.status().is_ok_and(|s| s.success()) {
                return Err(format!(
                    "user {} cannot write there (a parent directory is closed to other users); set {DATA_DIR_VAR} \
                     to a directory it can reach, e.g. /var/lib/autogpt-es/postgres",
                    owner.name
                ));
            }
        }
        tracing::info!(data_dir = %dir.display(), "creating a PostgreSQL cluster (initdb)");
        // C.UTF-8 as Debian's own clusters; systems without that locale get C.
        let initdb = |locale: &str| {
            let mut initdb = self.command(&self.binaries.initdb);
            initdb
                .arg("-D")
                .arg(dir)
                .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
                .arg(format!("--locale={locale}"));
            run(initdb, "initdb")
        };
        if let Err(first) = initdb("C.UTF-8") {
            initdb("C").map_err(|second| format!("{first}\nand with --locale=C: {second}"))?;
        }
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(dir.join("postgresql.conf"))
            .map_err(|e| format!("postgresql.conf: {e}"))?;
        writeln!(conf, "\n# autogpt-es: listen address, port and socket, rewritten on every start")
            .and_then(|()| writeln!(conf, "include_if_exists = '{MANAGED_CONF}'"))
            .map_err(|e| format!("postgresql.conf: {e}"))?;
        tracing::info!(data_dir = %dir.display(), "created a PostgreSQL cluster");
        Ok(())
    }

    /// The port of the server running on this data directory, once it is
    /// ready; `None` when none runs (a stale `postmaster.pid` is removed).
    fn running(&self) -> Result<Option<u16>, String> {
        let pid_path = self.data_dir.join("postmaster.pid");
        let deadline = Instant::now() + WAIT;
        loop {
            let Ok(text) = fs::read_to_string(&pid_path) else { return Ok(None) };
            let pid_file = PidFile::parse(&text);
            let alive = pid_file.as_ref().is_some_and(|p| self.is_postmaster(p.pid));
            match pid_file {
                Some(p) if alive && p.status.as_deref() == Some("ready") && p.port.is_some() => return Ok(p.port),
                // Starting up or shutting down: wait for it to settle.
                Some(_) if alive && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Some(p) if alive => {
                    return Err(format!("the server (pid {}) running there did not become ready", p.pid));
                }
                _ => {
                    // A crash, or a killed container, leaves the file; its
                    // pid may since name another process, and PostgreSQL
                    // would then refuse to start.
                    tracing::warn!(path = %pid_path.display(), "removing a stale postmaster.pid (its server is gone)");
                    fs::remove_file(&pid_path).map_err(|e| format!("remove stale postmaster.pid: {e}"))?;
                    return Ok(None);
                }
            }
        }
    }

    /// Whether `pid` is the server of this data directory: on Linux, a
    /// process whose working directory it is (the postmaster's); elsewhere
    /// as `pg_ctl status` judges.
    fn is_postmaster(&self, pid: u32) -> bool {
        if Path::new("/proc/self").exists() {
            return fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == self.data_dir);
        }
        let mut status = self.command(&self.binaries.pg_ctl);
        status.arg("status").arg("-D").arg(&self.data_dir).stdout(Stdio::null()).stderr(Stdio::null());
        status.status().is_ok_and(|s| s.success())
    }

    fn pg_start(&self) -> Result<(), String> {
        let dir = &self.data_dir;
        let dir_text = dir.to_str().unwrap_or("");
        // Quotes would need escaping in two syntaxes; long paths do not fit
        // a socket address. TCP on loopback serves either way.
        let socket_dir =
            if dir_text.is_empty() || dir_text.len() > MAX_SOCKET_DIR || dir_text.contains(['\'', '"', '\\']) {
                String::new()
            } else {
                format!("\"{dir_text}\"")
            };
        let managed = format!(
            "# Written by autogpt-es on every start of its private cluster.\n\
             listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{socket_dir}'\n",
            self.port
        );
        let conf = dir.join(MANAGED_CONF);
        fs::write(&conf, managed).map_err(|e| format!("{}: {e}", conf.display()))?;
        let log = dir.join(LOG_FILE);
        let mut start = self.command(&self.binaries.pg_ctl);
        start
            .arg("start")
            .arg("-D")
            .arg(dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-s", "-t"])
            .arg(WAIT.as_secs().to_string());
        run(start, "pg_ctl start").map_err(|e| {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            let mut message = e;
            if !tail.is_empty() {
                let _ = write!(message, "\n{}:", log.display());
                for line in tail.into_iter().rev() {
                    let _ = write!(message, "\n  {line}");
                }
            }
            message
        })
    }
}

/// Run to completion; the error carries the program's output.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}

/// `pg_ctl (PostgreSQL) 15.4`, for the log.
fn version(pg_ctl: &Path) -> String {
    Command::new(pg_ctl)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `preferred` if it is free on loopback, else any free port.
fn free_port(preferred: u16) -> std::io::Result<u16> {
    if preferred != 0 && TcpListener::bind((Ipv4Addr::LOCALHOST, preferred)).is_ok() {
        return Ok(preferred);
    }
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Our effective user id: the owner of `/proc/self` on Linux, else `id -u`.
fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").map(|m| m.uid()).ok().or_else(|| {
        let out = Command::new("id").arg("-u").output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    })
}

/// Whom to run the programs as, being root: an existing cluster's owner
/// (whoever created it), else the `postgres` user the packages create.
fn owner_for_root(data_dir: &Path, exists: bool) -> Result<Owner, String> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    if exists {
        let meta = fs::metadata(data_dir).map_err(|e| e.to_string())?;
        if meta.uid() != 0 {
            let name = passwd_entries(&passwd)
                .find(|o| o.uid == meta.uid())
                .map_or_else(|| meta.uid().to_string(), |o| o.name);
            return Ok(Owner { name, uid: meta.uid(), gid: meta.gid() });
        }
    }
    let found = passwd_entries(&passwd).find(|o| o.name == ROOT_STAND_IN);
    found.or_else(|| id_of(ROOT_STAND_IN)).ok_or_else(|| {
        format!(
            "running as root, which initdb refuses, and there is no `{ROOT_STAND_IN}` user to run it as \
             (the PostgreSQL package creates one): create it, or run as another user"
        )
    })
}

/// The users of an `/etc/passwd`.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = Owner> + '_ {
    passwd.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(Owner { name: name.to_owned(), uid, gid })
    })
}

/// A user known to the name service but not to `/etc/passwd` (LDAP, ...).
fn id_of(name: &str) -> Option<Owner> {
    let field = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok().filter(|o| o.status.success())?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some(Owner { name: name.to_owned(), uid: field("-u")?, gid: field("-g")? })
}

/// What `postmaster.pid` says: the pid (line 1), port (4) and status (8:
/// `starting`, `ready`, `stopping`; absent while it starts).
#[derive(Debug, PartialEq, Eq)]
struct PidFile {
    pid: u32,
    port: Option<u16>,
    status: Option<String>,
}

impl PidFile {
    fn parse(text: &str) -> Option<Self> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        Some(Self {
            pid: lines.first()?.parse().ok()?,
            port: lines.get(3).and_then(|p| p.parse().ok()),
            status: lines.get(7).filter(|s| !s.is_empty()).map(|s| (*s).to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_give_users() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        let users: Vec<Owner> = passwd_entries(passwd).collect();
        assert_eq!(users[1], Owner { name: "postgres".into(), uid: 101, gid: 104 });
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn pid_files_before_and_after_ready() {
        let ready = "4242\n/data\n1700000000\n54329\n/data\n127.0.0.1\n  1234   5678\nready   \n";
        assert_eq!(PidFile::parse(ready), Some(PidFile { pid: 4242, port: Some(54329), status: Some("ready".into()) }));
        assert_eq!(PidFile::parse("4242\n/data\n"), Some(PidFile { pid: 4242, port: None, status: None }));
        assert_eq!(PidFile::parse("garbage"), None);
    }
}
