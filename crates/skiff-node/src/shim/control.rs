//! The per-pod shim: `skiff shim`, one process per pod, started by the agent and independent of
//! it (own session), so pods keep running when the agent or `skiff server` restarts.
//!
//! It *is* the pod sandbox: it unshares the network, IPC and UTS namespaces for itself (no pause
//! container) and every container joins them through `/proc/<shim>/ns/*`. It never runs
//! libcontainer itself: a short-lived helper (`container-start`, see `runtime.rs`) creates each
//! container and exits, and the container's init, orphaned, comes to the shim because the shim
//! is a subreaper. So the long-lived process stays small (no libcontainer code or heap in it:
//! this module reaches neither `runtime` nor libcontainer, which tidy checks) and
//! single-threaded, and it alone reaps the containers. One `poll` loop serves the control socket, SIGCHLD and the containers'
//! output pipes, which become CRI log files. What the agent needs to know (started, exited) is
//! written to the pod directory, so nothing is lost while no agent is listening.
//!
//! Control protocol: `protocol.rs`; after an `attach` reply the connection carries the
//! container's output (see `link/attach.rs`, the agent's side).

use super::cgroup::{oom_killed, remove_cgroup_tree};
use super::protocol::{EXITED_LINE, Reply, Request, StartResult, container_id};
use crate::logs::{CriWriter, LogLimits, RotatingLog, SharedLog, Stream};
use crate::pod_dir::{Exited, PodDir, Started, now_rfc3339};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use skiff_nodeapi::Channel;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the shim could not run, or could not do what a request asked. A request's error reaches
/// the agent only as text (the reply's `error`, or an attempt's `start_error`, which becomes the
/// container's status message), so the wording is part of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("usage: skiff-shim --dir DIR --hostname NAME --runtime EXE")]
    Usage,
    #[error("{what}: {source}")]
    Os { what: &'static str, source: std::io::Error },
    /// A descriptor or directory operation that needs no more context than its error.
    #[error(transparent)]
    Io(std::io::Error),
    /// A signal that could not be sent.
    #[error(transparent)]
    Signal(nix::errno::Errno),
    #[error("pipe: {0}")]
    Pipe(#[source] nix::errno::Errno),
    #[error("bad request: {0}")]
    BadRequest(#[source] serde_json::Error),
    #[error("attach and watch need a connection of their own")]
    NeedsOwnConnection,
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("the pod is shutting down")]
    ShuttingDown,
    /// The bundle the agent prepared has no readable `config.json`.
    #[error("the container's config.json is missing or unreadable")]
    BundleConfig(#[source] std::io::Error),
    #[error("opening {}: {source}", path.display())]
    OpenLog { path: PathBuf, source: std::io::Error },
    #[error("binding {}: {source}", path.display())]
    ConsoleSocket { path: PathBuf, source: std::io::Error },
    #[error("the container's terminal never came")]
    NoTerminal,
    #[error("running {}: {source}", runtime.display())]
    Runtime { runtime: PathBuf, source: std::io::Error },
    /// What `container-start` reported in `start.json`: only its text crosses the process boundary.
    #[error("{0}")]
    StartFailed(String),
    /// `container-start` ended without reporting.
    #[error("starting the container failed ({0})")]
    StartUnreported(std::process::ExitStatus),
}

fn os(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> ShimError {
    move |e| ShimError::Os { what, source: e.into() }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ShimError {
    move |source| ShimError::Os { what, source }
}

/// A container's stdin: kept open for attach sessions (`stdin`), closed when the first
/// session that took it leaves (`stdinOnce`).
#[derive(Debug, Clone, Copy, Default)]
struct Stdin {
    open: bool,
    once: bool,
}

/// A running container attempt.
struct Running {
    container: String,
    attempt: u32,
    cgroup: Option<String>,
    /// Its stdin (pipe write end, or terminal master) while open for attach sessions.
    input: Option<OwnedFd>,
    stdin_once: bool,
}

/// A container's output (a pipe, or its terminal's master) and where it goes.
struct Output {
    container: String,
    /// The attach frame's stream number.
    stream: u8,
    pipe: File,
    writer: CriWriter<SharedLog>,
}

/// An attach session: the container's output goes to it as frames.
struct Client {
    container: String,
    conn: UnixStream,
    /// Frames not yet taken by the session.
    pending: Vec<u8>,
    /// It took the container's stdin.
    stdin: bool,
    /// The container ended: close once the pending frames are out.
    ended: bool,
}

/// A session that falls this far behind is dropped (the log keeps everything), so a reader
/// that never reads costs the shim a bounded amount of memory.
const CLIENT_BACKLOG: usize = 1 << 20;

struct Shim {
    dir: PodDir,
    /// The program that starts containers (`skiff-shim` or `skiff`, run as `... container-start`).
    runtime: PathBuf,
    running: HashMap<Pid, Running>,
    outputs: Vec<Output>,
    clients: Vec<Client>,
    /// The agent's [`Request::Watch`] connections, told of each exit.
    watchers: Vec<UnixStream>,
    shutting_down: bool,
}

/// The shim's command line, `--dir DIR --hostname NAME --runtime EXE` (after `skiff-shim shim`
/// or `skiff shim`), parsed by hand: the shim lives as long as its pod, so it links
/// and touches as little as it can. Logs go to DIR/shim.log.
pub fn main_from_args(args: &[std::ffi::OsString]) -> Result<(), ShimError> {
    let (mut dir, mut hostname, mut runtime) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--dir") => dir = it.next().map(PathBuf::from),
            Some("--hostname") => hostname = it.next().and_then(|h| h.to_str()).map(String::from),
            Some("--runtime") => runtime = it.next().map(PathBuf::from),
            _ => return Err(ShimError::Usage),
        }
    }
    let (Some(dir), Some(hostname), Some(runtime)) = (dir, hostname, runtime) else { return Err(ShimError::Usage) };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("shim.log"))
        .map_err(io("opening shim.log"))?;
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(log))
        .init();
    run(&dir, &hostname, &runtime)
}

/// Run the shim for the pod directory `dir` until it is told to shut down; `runtime EXE`'s
/// `container-start` creates the containers.
pub fn run(dir: &Path, hostname: &str, runtime: &Path) -> Result<(), ShimError> {
    // Not the agent's session or process group: its signals and its exit are not ours.
    let _ = nix::unistd::setsid();
    use nix::sched::CloneFlags;
    nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
        .map_err(os("creating the pod's namespaces"))?;
    nix::unistd::sethostname(hostname).map_err(os("setting the hostname"))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(os("becoming a subreaper"))?;

    let (sigchld, sigchld_write) = UnixStream::pair().map_err(io("a signal pipe"))?;
    sigchld.set_nonblocking(true).map_err(io("a signal pipe"))?;
    sigchld_write.set_nonblocking(true).map_err(io("a signal pipe"))?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, sigchld_write)
        .map_err(io("handling SIGCHLD"))?;

    let dir = PodDir::at(dir.to_path_buf());
    let socket = dir.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(io("binding the control socket"))?;
    listener.set_nonblocking(true).map_err(io("binding the control socket"))?;
    // The pid file says "ready": the socket is bound and the namespaces exist.
    dir.write_shim_pid(std::process::id()).map_err(io("writing shim.pid"))?;
    // And closing stdout tells the agent that started us, at once.
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null);
    }

    let mut shim = Shim {
        dir,
        runtime: runtime.to_path_buf(),
        running: HashMap::new(),
        outputs: Vec::new(),
        clients: Vec::new(),
        watchers: Vec::new(),
        shutting_down: false,
    };
    loop {
        shim.reap();
        shim.serve_clients(&[]);
        if shim.shutting_down && shim.running.is_empty() {
            shim.drain_outputs();
            let _ = std::fs::remove_file(&socket);
            return Ok(());
        }
        let mut fds =
            vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN), PollFd::new(sigchld.as_fd(), PollFlags::POLLIN)];
        fds.extend(shim.outputs.iter().map(|o| PollFd::new(o.pipe.as_fd(), PollFlags::POLLIN)));
        let clients_at = fds.len();
        fds.extend(shim.clients.iter().map(|c| {
            let out = if c.pending.is_empty() { PollFlags::empty() } else { PollFlags::POLLOUT };
            PollFd::new(c.conn.as_fd(), PollFlags::POLLIN | out)
        }));
        let watchers_at = fds.len();
        fds.extend(shim.watchers.iter().map(|w| PollFd::new(w.as_fd(), PollFlags::POLLIN)));
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(os("poll")(e)),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[1] {
            let mut buf = [0u8; 64];
            while matches!((&sigchld).read(&mut buf), Ok(n) if n > 0) {}
        }
        // Output first, so a container's last lines are in its log before its exit is recorded.
        let readable: Vec<usize> =
            ready[2..clients_at].iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect();
        for i in readable.into_iter().rev() {
            if !shim.outputs[i].pump(&mut shim.clients) {
                shim.outputs.remove(i);
            }
        }
        shim.serve_clients(&ready[clients_at..watchers_at]);
        shim.drop_closed_watchers(&ready[watchers_at..]);
        if ready[0] {
            while let Ok((conn, _)) = listener.accept() {
                shim.serve(conn);
            }
        }
    }
}

impl Output {
    /// Copy what is available to the log and to attached sessions; false at end of stream.
    fn pump(&mut self, clients: &mut [Client]) -> bool {
        // Small on purpose: the shim lives as long as the pod, and every stack page it ever
        // touches stays its own; a busy pipe just takes a few more reads.
        let mut buf = [0u8; 8 * 1024];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = self.writer.write(&buf[..n], &now_rfc3339()) {
                        tracing::warn!(error = %e, "writing a container log");
                    }
                    for c in clients.iter_mut().filter(|c| c.container == self.container && !c.ended) {
                        c.pending.extend(skiff_stream::frames::frame(self.stream, &buf[..n]));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A terminal's master reads EIO once the container's side has closed.
                Err(_) => break,
            }
        }
        let _ = self.writer.finish(&now_rfc3339());
        false
    }
}

impl Shim {
    fn serve(&mut self, conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let request = match BufReader::new(&conn).read_line(&mut line) {
            Ok(_) => serde_json::from_str::<Request>(&line).map_err(ShimError::BadRequest),
            Err(e) => Err(io("reading the request")(e)),
        };
        let (reply, input) = match request {
            Ok(Request::Attach { container, stdin }) => match self.attach(&container, stdin) {
                Ok(input) => (Ok(()), Some((container, input))),
                Err(e) => (Err(e), None),
            },
            Ok(Request::Watch) => {
                if (&conn).write_all(b"{}\n").is_ok() && conn.set_nonblocking(true).is_ok() {
                    self.watchers.push(conn);
                }
                return;
            }
            Ok(req) => (self.handle(req), None),
            Err(e) => (Err(e), None),
        };
        let reply = Reply { error: reply.err().map(|e| e.to_string()) };
        let mut text = serde_json::to_string(&reply).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        let Some((container, input)) = input else {
            let _ = (&conn).write_all(text.as_bytes());
            return;
        };
        // An attach session: the reply carries the container's stdin, then the connection stays.
        let sent = super::fdpass::send(&conn, text.as_bytes(), input.as_ref().map(|f| f.as_fd()));
        if sent.is_ok() && conn.set_nonblocking(true).is_ok() {
            let stdin = input.is_some();
            self.clients.push(Client { container, conn, pending: Vec::new(), stdin, ended: false });
        }
    }

    /// A copy of `container`'s stdin for a session that asks for it (none if the pod keeps none).
    fn attach(&self, container: &str, stdin: bool) -> Result<Option<OwnedFd>, ShimError> {
        let running = self
            .running
            .values()
            .find(|r| r.container == container)
            .ok_or_else(|| ShimError::NotRunning(container.to_string()))?;
        match (&running.input, stdin) {
            (Some(input), true) => input.try_clone().map(Some).map_err(ShimError::Io),
            _ => Ok(None),
        }
    }

    /// Send attach sessions their frames, notice those that left; `ready` says which polled.
    fn serve_clients(&mut self, ready: &[bool]) {
        let mut gone = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            let mut alive = c.pending.len() <= CLIENT_BACKLOG;
            if alive && ready.get(i).copied().unwrap_or(false) {
                // Sessions send nothing: readable means closed.
                let mut buf = [0u8; 256];
                alive = matches!((&c.conn).read(&mut buf), Err(ref e) if e.kind() == ErrorKind::WouldBlock);
            }
            while alive && !c.pending.is_empty() {
                match (&c.conn).write(&c.pending) {
                    Ok(n) if n > 0 => drop(c.pending.drain(..n)),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    _ => alive = false,
                }
            }
            if !alive || (c.ended && c.pending.is_empty()) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            let c = self.clients.remove(i);
            // stdinOnce: the first session that took stdin closes it when it leaves.
            if c.stdin
                && let Some(r) = self.running.values_mut().find(|r| r.container == c.container && r.stdin_once)
            {
                r.input = None;
            }
        }
    }

    fn handle(&mut self, req: Request) -> Result<(), ShimError> {
        match req {
            Request::Start { container, attempt, log, stdin, stdin_once } => {
                self.start(&container, attempt, log, Stdin { open: stdin, once: stdin_once })
            }
            Request::Attach { .. } | Request::Watch => Err(ShimError::NeedsOwnConnection),
            Request::Signal { container, signal } => {
                let signal = Signal::try_from(signal).map_err(ShimError::Signal)?;
                for (pid, r) in &self.running {
                    if r.container == container {
                        nix::sys::signal::kill(*pid, signal).map_err(ShimError::Signal)?;
                    }
                }
                Ok(())
            }
            Request::Shutdown => {
                self.shutting_down = true;
                for pid in self.running.keys() {
                    let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
                }
                Ok(())
            }
        }
    }

    fn start(&mut self, container: &str, attempt: u32, log: LogLimits, stdin: Stdin) -> Result<(), ShimError> {
        if self.shutting_down {
            return Err(ShimError::ShuttingDown);
        }
        if self.running.values().any(|r| r.container == container) {
            return Err(ShimError::AlreadyRunning(container.to_string()));
        }
        let bundle = self.dir.attempt(container, attempt);
        let result = self.launch(container, attempt, &bundle, log, stdin);
        if let Err(e) = &result {
            // Recorded like an exit, so the agent sees the failure even if it missed this reply.
            let exited = Exited {
                exit_code: 128,
                signal: None,
                finished_at: now_rfc3339(),
                oom_killed: false,
                start_error: Some(e.to_string()),
            };
            self.record_exit(container, attempt, &exited);
            self.forget(container, attempt, None);
        }
        result
    }

    /// Remove what the runtime kept of an attempt that has ended: its state and its cgroup
    /// (a fresh one per attempt, so an OOM counter never carries over to the next).
    fn forget(&self, container: &str, attempt: u32, cgroup: Option<&str>) {
        let _ = std::fs::remove_dir_all(self.dir.runtime_state().join(container_id(container, attempt)));
        if let Some(cgroup) = cgroup {
            remove_cgroup_tree(cgroup.trim_start_matches('/'));
        }
    }

    fn launch(
        &mut self,
        container: &str,
        attempt: u32,
        bundle: &Path,
        limits: LogLimits,
        stdin: Stdin,
    ) -> Result<(), ShimError> {
        let config: serde_json::Value = std::fs::read(bundle.join("config.json"))
            .and_then(|b| serde_json::from_slice(&b).map_err(std::io::Error::from))
            .map_err(ShimError::BundleConfig)?;
        let cgroup = config["linux"]["cgroupsPath"].as_str().map(String::from);
        let terminal = config["process"]["terminal"].as_bool().unwrap_or(false);
        let log_path = self.dir.log(container, attempt);
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent).map_err(ShimError::Io)?;
        }
        let log = RotatingLog::open(&log_path, limits)
            .map_err(|source| ShimError::OpenLog { path: log_path.clone(), source })?;
        let log = SharedLog(std::rc::Rc::new(std::cell::RefCell::new(log)));
        let id = container_id(container, attempt);
        let state = self.dir.runtime_state();
        let (pid, outputs, input) = if terminal {
            let (pid, master) = self.start_on_terminal(&id, bundle, &state)?;
            let output = master.try_clone().map_err(ShimError::Io)?;
            (
                pid,
                vec![(output, CriWriter::new(log, Stream::Stdout), Channel::Stdout.number())],
                stdin.open.then_some(master),
            )
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (in_r, in_w) = if stdin.open { pipe().map(|(r, w)| (Some(r), Some(w)))? } else { (None, None) };
            let pipes = ContainerStdio::Pipes { stdin: in_r, stdout: out_w, stderr: err_w };
            let pid = start_container(&self.runtime, &id, bundle, &state, pipes)?;
            let outputs = vec![
                (out_r, CriWriter::new(log.clone(), Stream::Stdout), Channel::Stdout.number()),
                (err_r, CriWriter::new(log, Stream::Stderr), Channel::Stderr.number()),
            ];
            (pid, outputs, in_w)
        };
        for (pipe, writer, stream) in outputs {
            let pipe = File::from(pipe);
            set_nonblocking(&pipe);
            self.outputs.push(Output { container: container.into(), stream, pipe, writer });
        }
        let started = Started { pid: pid.as_raw(), started_at: now_rfc3339() };
        self.dir.write_started(container, attempt, &started).map_err(ShimError::Io)?;
        let running = Running { container: container.into(), attempt, cgroup, input, stdin_once: stdin.once };
        self.running.insert(pid, running);
        Ok(())
    }

    /// Start a container whose process runs on a terminal (`tty: true`): libcontainer makes it in
    /// the container and sends its master to a console socket of ours.
    fn start_on_terminal(&self, id: &str, bundle: &Path, state: &Path) -> Result<(Pid, OwnedFd), ShimError> {
        // One start at a time in this process: one socket name will do (and stays short).
        let console = self.dir.root().join("console.sock");
        let _ = std::fs::remove_file(&console);
        let listener = UnixListener::bind(&console)
            .map_err(|source| ShimError::ConsoleSocket { path: console.clone(), source })?;
        let started = start_container(&self.runtime, id, bundle, state, ContainerStdio::Terminal(&console));
        let _ = std::fs::remove_file(&console);
        let pid = started?;
        // The container's init sent the master before it was started.
        let _ = listener.set_nonblocking(true);
        let master = listener.accept().ok().and_then(|(conn, _)| {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            super::fdpass::receive(&conn, 256).ok()?.1
        });
        match master {
            Some(master) => Ok((pid, master)),
            None => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                Err(ShimError::NoTerminal)
            }
        }
    }

    /// Reap every exited child; record the exits of container inits.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(s) => s,
            };
            let (pid, exit_code, signal) = match status {
                WaitStatus::Exited(pid, code) => (pid, code, None),
                WaitStatus::Signaled(pid, sig, _) => (pid, 128 + sig as i32, Some(sig as i32)),
                _ => continue,
            };
            let Some(r) = self.running.remove(&pid) else { continue };
            let oom_killed = r.cgroup.as_deref().is_some_and(oom_killed);
            self.drain_outputs();
            for c in self.clients.iter_mut().filter(|c| c.container == r.container) {
                c.ended = true;
            }
            let exited = Exited { exit_code, signal, finished_at: now_rfc3339(), oom_killed, start_error: None };
            self.record_exit(&r.container, r.attempt, &exited);
            self.forget(&r.container, r.attempt, r.cgroup.as_deref());
        }
    }

    /// Write an attempt's exit record, then tell the watchers. A watcher that cannot take the
    /// line at once is dropped: its end of stream makes the agent look, and watch again.
    fn record_exit(&mut self, container: &str, attempt: u32, exited: &Exited) {
        if let Err(e) = self.dir.write_exited(container, attempt, exited) {
            tracing::error!(error = %e, container, "recording an exit");
        }
        self.watchers.retain(|mut w| matches!(w.write(EXITED_LINE), Ok(n) if n == EXITED_LINE.len()));
    }

    /// Forget the watchers whose agent hung up (they send nothing: readable means closed).
    fn drop_closed_watchers(&mut self, ready: &[bool]) {
        let mut i = 0;
        self.watchers.retain(|w| {
            let polled = ready.get(i).copied().unwrap_or(false);
            i += 1;
            let mut buf = [0u8; 64];
            !polled || matches!((&*w).read(&mut buf), Err(ref e) if e.kind() == ErrorKind::WouldBlock)
        });
    }

    /// Copy whatever output is already buffered in the pipes.
    fn drain_outputs(&mut self) {
        let clients = &mut self.clients;
        self.outputs.retain_mut(|o| o.pump(clients));
    }
}

/// What a started container's standard streams are.
enum ContainerStdio<'a> {
    /// Pipe ends (stdin: `/dev/null` if none).
    Pipes { stdin: Option<OwnedFd>, stdout: OwnedFd, stderr: OwnedFd },
    /// A terminal of its own, whose master goes to the console socket at this path.
    Terminal(&'a Path),
}

/// Run the runtime's `container-start` for container `id` of `bundle` with the given standard
/// streams; it exits once the container runs, leaving the container's init to us.
fn start_container(
    runtime: &Path,
    id: &str,
    bundle: &Path,
    state: &Path,
    stdio: ContainerStdio,
) -> Result<Pid, ShimError> {
    let _ = StartResult::remove(bundle);
    let mut cmd = std::process::Command::new(runtime);
    cmd.arg("container-start").arg("--id").arg(id).arg("--bundle").arg(bundle).arg("--state").arg(state);
    use std::process::Stdio;
    match stdio {
        ContainerStdio::Pipes { stdin, stdout, stderr } => {
            cmd.stdin(stdin.map_or_else(Stdio::null, |fd| Stdio::from(File::from(fd))))
                .stdout(File::from(stdout))
                .stderr(File::from(stderr));
        }
        ContainerStdio::Terminal(console) => {
            cmd.arg("--console-socket").arg(console).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let status = cmd.status().map_err(|source| ShimError::Runtime { runtime: runtime.to_path_buf(), source })?;
    match StartResult::read(bundle) {
        Some(StartResult { pid: Some(pid), .. }) => Ok(Pid::from_raw(pid)),
        Some(StartResult { error: Some(e), .. }) => Err(ShimError::StartFailed(e)),
        _ => Err(ShimError::StartUnreported(status)),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ShimError::Pipe)
}

fn set_nonblocking(file: &File) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(file, FcntlArg::F_GETFL) {
        let _ = fcntl(file, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shim(dir: &Path) -> Shim {
        Shim {
            dir: PodDir::at(dir.to_path_buf()),
            runtime: PathBuf::new(),
            running: HashMap::new(),
            outputs: Vec::new(),
            clients: Vec::new(),
            watchers: Vec::new(),
            shutting_down: false,
        }
    }

    #[test]
    fn a_watch_connection_hears_of_each_exit_until_it_hangs_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shim = shim(dir.path());
        let (agent, conn) = UnixStream::pair().expect("pair");
        (&agent).write_all(b"{\"op\":\"watch\"}\n").expect("request");
        shim.serve(conn);
        let mut agent = BufReader::new(agent);
        let mut line = String::new();
        agent.read_line(&mut line).expect("reply");
        assert_eq!(line, "{}\n");

        let exited =
            Exited { exit_code: 3, signal: None, finished_at: now_rfc3339(), oom_killed: false, start_error: None };
        std::fs::create_dir_all(shim.dir.attempt("app", 0)).expect("mkdir");
        shim.record_exit("app", 0, &exited);
        // The record is on disk before the line is sent: the agent reads it when woken.
        assert_eq!(shim.dir.exited("app", 0).map(|e| e.exit_code), Some(3));
        line.clear();
        agent.read_line(&mut line).expect("notification");
        assert_eq!(line.as_bytes(), EXITED_LINE);

        // Still there while the agent listens; gone once it hangs up.
        shim.drop_closed_watchers(&[false]);
        assert_eq!(shim.watchers.len(), 1);
        drop(agent);
        shim.drop_closed_watchers(&[true]);
        assert!(shim.watchers.is_empty());
    }
}
