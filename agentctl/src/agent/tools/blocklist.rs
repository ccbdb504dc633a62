//! The reference lesson's blocklist for `bash` and `background_run`: a few
//! commands refused before they reach agentd. It catches accidents, not
//! intent; it is **not a sandbox** (any command can be spelled in a way it
//! does not recognise).
//!
//! The command is split into words the way `sh` would at the surface
//! (quotes, backslashes, `;` `&` `|` `(` `)` and newlines between commands,
//! redirections), without expanding anything. Refused:
//!
//! - the words `sudo`, `shutdown`, `reboot` anywhere;
//! - `rm` with a recursive flag (`-r`, `-R`, `--recursive`, in any cluster
//!   or order, with or without `-f`) on the root or the home directory:
//!   `/`, `//`, `/.`, `/..`, `/*`, `~`, `~/`, `~/*`, `$HOME`, `${HOME}/*`;
//! - a redirection (`>`, `>>`, `>|`, `&>`, `2>`, `<>`, ...) into `/dev/`
//!   other than `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/stdout`,
//!   `/dev/stderr`, `/dev/tty` and `/dev/fd/N`.

/// The surface of a command line: its simple commands (as words) and the
/// targets of its output redirections.
#[derive(Debug, Default, PartialEq)]
struct Surface {
    /// Words of each simple command, in order.
    commands: Vec<Vec<String>>,
    /// Files written by a redirection.
    redirects: Vec<String>,
}

/// Splits `command` into [`Surface`].
fn surface(command: &str) -> Surface {
    let mut out = Surface::default();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    // Set after `>`: the next word is a redirection target (`dup` after
    // `>&`, where a number or `-` names a descriptor, not a file).
    let mut target: Option<bool> = None;
    let mut chars = command.chars().peekable();

    fn end_word(
        word: &mut Option<String>,
        words: &mut Vec<String>,
        target: &mut Option<bool>,
        redirects: &mut Vec<String>,
    ) {
        if let Some(w) = word.take() {
            match target.take() {
                Some(dup) => {
                    let fd = !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
                    if !(dup && (fd || w == "-")) {
                        redirects.push(w);
                    }
                }
                None => words.push(w),
            }
        }
    }

    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                w.push(e);
                            }
                        }
                        q => w.push(q),
                    }
                }
            }
            '\\' => {
                if let Some(e) = chars.next()
                    && e != '\n'
                {
                    word.get_or_insert_with(String::new).push(e);
                }
            }
            '#' if word.is_none() => {
                // A comment runs to the end of the line.
                for q in chars.by_ref() {
                    if q == '\n' {
                        break;
                    }
                }
                end_word(&mut word, &mut words, &mut target, &mut out.redirects);
                out.commands.push(std::mem::take(&mut words));
            }
            '>' => {
                // `2>`: the digits before `>` name a descriptor.
                if word
                    .as_deref()
                    .is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
                {
                    word = None;
                }
                end_word(&mut word, &mut words, &mut target, &mut out.redirects);
                let mut dup = false;
                match chars.peek() {
                    Some('>' | '|') => {
                        chars.next();
                    }
                    Some('&') => {
                        chars.next();
                        dup = true;
                    }
                    _ => {}
                }
                target = Some(dup);
            }
            c if c.is_whitespace() && c != '\n' => {
                end_word(&mut word, &mut words, &mut target, &mut out.redirects);
            }
            ';' | '&' | '|' | '(' | ')' | '\n' | '`' | '<' => {
                end_word(&mut word, &mut words, &mut target, &mut out.redirects);
                if c != '<' {
                    out.commands.push(std::mem::take(&mut words));
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut words, &mut target, &mut out.redirects);
    out.commands.push(words);
    out.commands.retain(|c| !c.is_empty());
    out
}

/// Lexically normalised components of an absolute path (`.` dropped, `..`
/// popped, repeated slashes merged); `None` when `path` is not absolute.
fn components(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let mut out = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    Some(out)
}

/// True when `target` is the root or the home directory, or all of its
/// entries (`/*`).
fn is_root_or_home(target: &str) -> bool {
    let home = ["~", "$HOME", "${HOME}"]
        .iter()
        .find_map(|h| target.strip_prefix(h))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    let path = match home {
        Some(rest) => format!("/{rest}"),
        None => target.to_string(),
    };
    components(&path).is_some_and(|c| c.is_empty() || c == ["*"])
}

/// True when `words` (a simple command) contains an `rm` with a recursive
/// flag aimed at the root or the home directory.
fn recursive_rm_of_root(words: &[String]) -> bool {
    let Some(start) = words
        .iter()
        .position(|w| w.rsplit('/').next() == Some("rm"))
    else {
        return false;
    };
    let mut recursive = false;
    let mut options = true;
    let mut targets = Vec::new();
    for w in &words[start + 1..] {
        if options && w == "--" {
            options = false;
        } else if options && w.starts_with("--") {
            recursive |= w == "--recursive";
        } else if options && w.len() > 1 && w.starts_with('-') {
            recursive |= w.contains(['r', 'R']);
        } else {
            targets.push(w.as_str());
        }
    }
    recursive && targets.into_iter().any(is_root_or_home)
}

/// True when writing to `path` could harm a device.
fn harmful_device(path: &str) -> bool {
    let Some(c) = components(path) else {
        return false;
    };
    match c.as_slice() {
        [
            "dev",
            "null" | "zero" | "full" | "stdout" | "stderr" | "tty",
        ] => false,
        ["dev", "fd", n] => !n.chars().all(|c| c.is_ascii_digit()),
        ["dev", ..] => true,
        _ => false,
    }
}

/// Checks `command` against the blocklist (see the module docs).
///
/// Errors: a sentence naming what was refused.
pub fn check(command: &str) -> Result<(), String> {
    let refused = |what: &str| {
        Err(format!(
            "command refused: it contains {what}, which is on agentctl's blocklist (a guard against accidents, not a sandbox)"
        ))
    };
    let words: Vec<&str> = command
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .collect();
    for bad in ["sudo", "shutdown", "reboot"] {
        if words.contains(&bad) {
            return refused(&format!("`{bad}`"));
        }
    }
    let s = surface(command);
    if s.commands.iter().any(|c| recursive_rm_of_root(c)) {
        return refused("a recursive `rm` of `/` or `~` (`rm -rf /`)");
    }
    if let Some(dev) = s.redirects.iter().find(|t| harmful_device(t)) {
        return refused(&format!("a redirection into {dev} (`> /dev/`)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lessons_commands_are_refused_in_any_spelling() {
        for bad in [
            "sudo ls",
            "ls && sudo rm x",
            "shutdown -h now",
            "reboot",
            "rm -rf /",
            "rm  -rf  / ",
            "rm -rf /*",
            "rm -fr /",
            "rm -r -f /",
            "rm -R -f /",
            "rm -rf //",
            "rm -rf /.",
            "rm -rf /..",
            "rm -rf '/'",
            "rm -rf \"/\"",
            "rm --recursive --force /",
            "rm -r /",
            "rm -rf -- /",
            "rm -rf /tmp/x /",
            "/bin/rm -rf /",
            "cd x && rm -rf /",
            "true;rm -rf /",
            "echo $(rm -rf /)",
            "rm -rf ~",
            "rm -rf ~/",
            "rm -rf ~/*",
            "rm -rf $HOME",
            "rm -rf \"$HOME\"/*",
            "echo x > /dev/sda",
            "echo x >/dev/sda",
            "echo x 2>/dev/sda",
            "echo x >>/dev/sda",
            "echo x &>/dev/sda",
            "echo x >| /dev/sda",
            "echo x >&/dev/sda",
            "echo x > \"/dev/sda\"",
            "echo x >/dev//sda",
            "echo x >/dev/./sda",
            "cat x >/dev/fd/../sda",
            "dd if=x <>/dev/sda",
        ] {
            assert!(check(bad).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn harmless_commands_pass() {
        for ok in [
            "ls",
            "ls /dev/",
            "ls -l /dev/sda",
            "cat /dev/urandom | head -c 10 > out.bin",
            "rm -rf /tmp/build",
            "rm -rf ./build",
            "rm -rf build/",
            "rm -rf ~/src/proj/target",
            "rm -f /tmp/x",
            "rm /",
            "echo pseudo",
            "echo 'rm -rf / is bad'",
            "echo '> /dev/sda'",
            "cargo build > /dev/null",
            "make 2> /dev/null",
            "make >/dev/null 2>&1",
            "make &>/dev/null",
            "echo err >&2",
            "echo x >/dev/stderr; echo y > /dev/stdout; echo z >/dev/tty",
            "exec 3>/dev/fd/1",
            "echo x > out.txt # > /dev/sda is only a comment",
            "grep -r foo /",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok} refused");
        }
    }

    #[test]
    fn surface_splits_commands_and_redirections() {
        let s = surface("a 'b c' \"d\\\"e\" f\\ g; h 2>&1 >out|i");
        assert_eq!(
            s.commands,
            vec![
                vec!["a".to_string(), "b c".into(), "d\"e".into(), "f g".into()],
                vec!["h".into()],
                vec!["i".into()],
            ]
        );
        assert_eq!(s.redirects, vec!["out".to_string()]);
    }
}
