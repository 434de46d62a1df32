//! Running a compiler: a child process, its input given and its output collected.
//!
//! A Windows test binary under Wine (the native Win64 suites on a Linux machine) cannot wait
//! for a Linux program: Wine starts it but hands back no process handle. There a command runs
//! through the host's `/bin/sh`, which leaves its output and exit status in files the test
//! binary reads; paths of the Windows side (`C:\users\...`) are given to it as Unix paths.

use std::io::{self, Write as _};
use std::process::{Command, Output, Stdio};

/// Runs `program` with `args` (and `stdin`, if any) to its end.
pub fn output(program: &str, args: &[String], stdin: Option<&str>) -> io::Result<Output> {
    #[cfg(windows)]
    if let Some(host) = wine::host() {
        return host.output(program, args, stdin);
    }
    direct(program, args, stdin)
}

fn direct(program: &str, args: &[String], stdin: Option<&str>) -> io::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let writer = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let text = text.to_string();
        // From another thread: the compiler may fill its output pipes before reading all.
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let output = child.wait_with_output()?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(output)
}

#[cfg(windows)]
mod wine {
    use std::ffi::{c_char, c_void, CStr};
    use std::io;
    use std::os::windows::ffi::OsStrExt as _;
    use std::os::windows::process::ExitStatusExt as _;
    use std::path::Path;
    use std::process::{Command, ExitStatus, Output};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Wine's `wine_get_unix_file_name`: a DOS path's Unix name, allocated on the process heap.
    type UnixFileName = unsafe extern "system" fn(*const u16) -> *mut c_char;

    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleW(name: *const u16) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const c_char) -> *mut c_void;
        fn GetProcessHeap() -> *mut c_void;
        fn HeapFree(heap: *mut c_void, flags: u32, memory: *mut c_void) -> i32;
    }

    /// Wine's own window onto the host (present only when running under Wine).
    pub struct Host {
        unix_file_name: UnixFileName,
    }

    /// The host, when this process runs under Wine.
    pub fn host() -> Option<&'static Host> {
        static HOST: OnceLock<Option<Host>> = OnceLock::new();
        HOST.get_or_init(|| {
            let kernel32: Vec<u16> = "kernel32.dll\0".encode_utf16().collect();
            // SAFETY: a NUL-terminated name; kernel32 is always loaded.
            let module = unsafe { GetModuleHandleW(kernel32.as_ptr()) };
            // SAFETY: a live module and a NUL-terminated name.
            let f = unsafe { GetProcAddress(module, c"wine_get_unix_file_name".as_ptr()) };
            // SAFETY: Wine's export has this signature.
            (!f.is_null()).then(|| Host {
                // SAFETY: (as above)
                unix_file_name: unsafe { std::mem::transmute::<*mut c_void, UnixFileName>(f) },
            })
        })
        .as_ref()
    }

    impl Host {
        /// The Unix name of a path of this process.
        fn unix_path(&self, path: &Path) -> io::Result<String> {
            let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
            // SAFETY: a NUL-terminated wide path.
            let name = unsafe { (self.unix_file_name)(wide.as_ptr()) };
            if name.is_null() {
                return Err(io::Error::other(format!("no Unix name for {}", path.display())));
            }
            // SAFETY: Wine returns a NUL-terminated string on the process heap.
            let text = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
            // SAFETY: allocated by Wine on the process heap, freed once.
            unsafe { HeapFree(GetProcessHeap(), 0, name.cast()) };
            Ok(text)
        }

        /// An argument as the host sees it: a path of this process (`C:\...`) by its Unix name.
        fn host_arg(&self, arg: &str) -> io::Result<String> {
            let b = arg.as_bytes();
            if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
                self.unix_path(Path::new(arg))
            } else {
                Ok(arg.to_string())
            }
        }

        /// Runs `program` through `/bin/sh` in a job directory and waits for its status file.
        pub fn output(
            &self,
            program: &str,
            args: &[String],
            stdin: Option<&str>,
        ) -> io::Result<Output> {
            let job = tempfile::Builder::new().prefix("backcall-host-").tempdir()?;
            let dir = self.unix_path(job.path())?;
            let mut command = quote(program);
            // (the paths given, by their Unix names: the output names them as they were given)
            let mut renamed = Vec::new();
            for arg in args {
                let host = self.host_arg(arg)?;
                command.push(' ');
                command.push_str(&quote(&host));
                if host != *arg {
                    renamed.push((host, arg.clone()));
                }
            }
            let input = match stdin {
                Some(text) => {
                    std::fs::write(job.path().join("in"), text)?;
                    quote(&format!("{dir}/in"))
                }
                None => "/dev/null".to_string(),
            };
            let d = quote(&dir);
            let script = format!(
                "{command} <{input} >{d}/out 2>{d}/err\necho $? >{d}/status.tmp\nmv {d}/status.tmp {d}/status\n"
            );
            std::fs::write(job.path().join("job.sh"), script)?;
            match Command::new(r"Z:\bin\sh").arg(format!("{dir}/job.sh")).spawn() {
                // (Wine starts the Unix program but may report that it has no handle of it)
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(6) => {}
                Err(e) => return Err(e),
            }
            let status = job.path().join("status");
            let started = Instant::now();
            while !status.exists() {
                if started.elapsed() > Duration::from_secs(600) {
                    return Err(io::Error::other(format!("`{program}` did not finish in 600 s")));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let code: u32 = std::fs::read_to_string(&status)?.trim().parse().unwrap_or(255);
            let read = |name: &str| -> io::Result<Vec<u8>> {
                let bytes = std::fs::read(job.path().join(name))?;
                Ok(match String::from_utf8(bytes) {
                    Ok(mut text) => {
                        for (host, given) in &renamed {
                            text = text.replace(host.as_str(), given);
                        }
                        text.into_bytes()
                    }
                    Err(e) => e.into_bytes(),
                })
            };
            Ok(Output {
                status: ExitStatus::from_raw(code),
                stdout: read("out")?,
                stderr: read("err")?,
            })
        }
    }

    /// `text` as one word of `sh`.
    fn quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
