//! Session ids read from a file or stdin (`--ids-from`): the command line of a process is
//! readable by every local user (`ps`, `/proc/PID/cmdline`), and a session id logs its holder
//! in.

use std::{
    io::{BufRead, Read},
    path::{Path, PathBuf},
};

use session_core::SessionId;

use crate::failure::Failure;

/// The longest line read: an id is 43 characters, the rest room for spaces and a `\r`.
pub const MAX_LINE: usize = 1024;

/// The most ids one run reads: they are all checked before anything is done, so all are held
/// (about 100 bytes each); more is a job for `--where` or a split list.
pub const MAX_IDS: usize = 1_000_000;

/// The most lines one run reads, blank ones included: an endless stream of new lines (`yes ''`)
/// would otherwise keep the command reading, skipping them, forever.
pub const MAX_LINES: usize = 2 * MAX_IDS;

/// The ids of `path` (`-`: stdin), one per line, blank lines skipped, each checked before any
/// is used. Errors name a bad line by its number, never by its text (a mangled id is still
/// most of a credential).
pub fn read(path: &Path) -> Result<Vec<SessionId>, Failure> {
    let from_stdin = path == Path::new("-");
    let name = if from_stdin {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    };
    let input: Box<dyn BufRead> = if from_stdin {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::usage(format!("--ids-from {name}: {e}")))?;
        Box::new(std::io::BufReader::new(file))
    };
    read_from(&name, input)
}

/// [`read`] of an opened input, named `name` in errors.
fn read_from(name: &str, mut input: impl BufRead) -> Result<Vec<SessionId>, Failure> {
    let mut ids = Vec::new();
    let mut n = 0usize;
    let mut line = Vec::with_capacity(MAX_LINE + 1);
    loop {
        line.clear();
        // One byte past the limit tells a line too long; the rest of it is never read (an
        // endless input, `/dev/zero`, would have been read to its end to skip it).
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::usage(format!("--ids-from {name}: {e}")))?;
        if read == 0 {
            break;
        }
        if n == MAX_LINES {
            return Err(Failure::usage(format!(
                "--ids-from {name}: more than {MAX_LINES} lines: split the list"
            )));
        }
        n += 1;
        let bad = || {
            Failure::usage(format!(
                "--ids-from {name}: line {n} is not a session id (not shown; expected one id of 43 characters of base64url per line)"
            ))
        };
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > MAX_LINE {
            return Err(bad());
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad())?.trim();
        if text.is_empty() {
            continue;
        }
        if ids.len() == MAX_IDS {
            return Err(Failure::usage(format!(
                "--ids-from {name}: more than {MAX_IDS} session ids: split the list, or select the sessions with --where, --no-ttl or --all"
            )));
        }
        ids.push(SessionId::parse(text).map_err(|_| bad())?);
    }
    if ids.is_empty() {
        return Err(Failure::usage(format!(
            "--ids-from {name}: no session id in it (one per line)"
        )));
    }
    Ok(ids)
}

/// The one id `show` takes: from the command line, or the single id of `--ids-from`.
pub fn one(arg: Option<&str>, from: Option<&PathBuf>) -> Result<SessionId, Failure> {
    match (arg, from) {
        (Some(text), _) => crate::cmd::show::parse_id(text),
        (None, Some(path)) => {
            let mut ids = read(path)?;
            if ids.len() != 1 {
                return Err(Failure::usage(format!(
                    "show takes one session id: --ids-from holds {}",
                    ids.len()
                )));
            }
            Ok(ids.remove(0))
        }
        (None, None) => Err(Failure::usage(
            "give the session id, or --ids-from FILE (`-`: stdin)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        let id = "A".repeat(43);
        std::fs::write(&path, format!("\n {id}\r\n\n{id}\n")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);

        std::fs::write(&path, format!("{id}\nsecret{}\n", "B".repeat(5000))).unwrap();
        let failure = read(&path).unwrap_err();
        assert!(failure.message.contains("line 2"), "{}", failure.message);
        assert!(!failure.message.contains("secret"), "{}", failure.message);
        assert_eq!(failure.status, 2);

        std::fs::write(&path, [b'\xff', b'\n']).unwrap();
        assert!(read(&path).unwrap_err().message.contains("line 1"));
    }

    /// An endless line ends the read at its limit: skipping to its end never came back.
    #[cfg(unix)]
    #[test]
    fn an_endless_input_is_an_error_not_a_hang() {
        let failure = read(Path::new("/dev/zero")).unwrap_err();
        assert!(failure.message.contains("line 1"), "{}", failure.message);
    }

    /// Endless blank lines (`yes ''`) end the read at the line limit: each one was skipped,
    /// and the read never came back.
    #[test]
    fn endless_blank_lines_are_an_error_not_a_hang() {
        let failure =
            read_from("stdin", std::io::BufReader::new(std::io::repeat(b'\n'))).unwrap_err();
        assert!(
            failure
                .message
                .contains(&format!("more than {MAX_LINES} lines")),
            "{}",
            failure.message
        );
    }
}
