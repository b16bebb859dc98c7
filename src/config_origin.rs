//! Where each key of a [`Config`](crate::Config) was set, so that an error found after parsing
//! (a value the types accept but the layer refuses) names the file, line and column of its key,
//! or the environment variable that set it, as parse errors do.

use std::fmt::Display;

use crate::ConfigError;

/// The source of a config: its name, the position of each key written in block style, and the
/// `STREAMGATE__` variables that overrode keys.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    source_name: String,
    keys: Vec<KeyAt>,
    /// Key paths (`security.cors`) set by a variable, and the variable, in the order applied.
    overrides: Vec<(String, String)>,
}

/// A key path and its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyAt {
    path: String,
    line: usize,
    column: usize,
}

impl Default for Origin {
    /// A config built in code: errors are reported against `config`.
    fn default() -> Self {
        Self {
            source_name: "config".to_owned(),
            keys: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

impl Origin {
    /// The keys of the YAML `text`, read from `source_name`.
    pub(crate) fn new(source_name: &str, text: &str) -> Self {
        Self {
            source_name: source_name.to_owned(),
            keys: block_keys(text),
            overrides: Vec::new(),
        }
    }

    /// Records that the variable `name` set the key `path` (`security.cors.allow_origins`).
    pub(crate) fn overridden(&mut self, path: &str, name: &str) {
        self.overrides.push((path.to_owned(), name.to_owned()));
    }

    /// An error about the key `key` (`security.cors`): against the variable that last set it
    /// (or a key inside or around it), else at the line of the key or its nearest parent in the
    /// file, else against the source alone.
    pub(crate) fn error(&self, key: &str, message: impl Display) -> ConfigError {
        let message = format!("{key}: {message}");
        let related = |path: &str| within(path, key) || within(key, path);
        if let Some((_, name)) = self.overrides.iter().rev().find(|(path, _)| related(path)) {
            return ConfigError::new(name, message);
        }
        let mut path = key;
        loop {
            if let Some(at) = self.keys.iter().find(|at| at.path == path) {
                return ConfigError::at(&self.source_name, at.line, at.column, message);
            }
            match path.rsplit_once('.') {
                Some((parent, _)) => path = parent,
                None => return ConfigError::new(&self.source_name, message),
            }
        }
    }
}

/// Whether `path` is `key` or a key inside it.
pub(crate) fn within(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The positions of the mapping keys written in block style (`key:` on a line of its own
/// indentation), by dotted path. Keys inside sequences and flow collections are not listed (an
/// error about one is placed at the nearest listed parent), and the lines of block scalars
/// (`key: |`) are skipped.
fn block_keys(text: &str) -> Vec<KeyAt> {
    let mut keys = Vec::new();
    // The open nodes, outermost first, with their indentation and their key; `None` for a node
    // without a path of its own: a sequence item, or a key that is not plain (`/files/{id}:`).
    let mut open: Vec<(usize, Option<&str>)> = Vec::new();
    let mut scalar_above: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        let mut indent = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if let Some(key_indent) = scalar_above {
            if indent > key_indent {
                continue;
            }
            scalar_above = None;
        }
        while open
            .last()
            .is_some_and(|&(open_indent, _)| open_indent >= indent)
        {
            open.pop();
        }
        let mut content = content;
        if let Some(item) = content.strip_prefix('-')
            && (item.is_empty() || item.starts_with(' '))
        {
            open.push((indent, None));
            content = item.trim_start();
            indent += 1 + item.len() - content.len();
        }
        let Some((key, value)) = block_key(content) else {
            continue;
        };
        let key = is_plain(key).then_some(key);
        if let Some(key) = key
            && let Some(parents) = open
                .iter()
                .map(|&(_, parent)| parent)
                .collect::<Option<Vec<&str>>>()
        {
            let mut path = parents.join(".");
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            keys.push(KeyAt {
                path,
                line: index + 1,
                column: indent + 1,
            });
        }
        open.push((indent, key));
        if value.starts_with('|') || value.starts_with('>') {
            scalar_above = Some(indent);
        }
    }
    keys
}

/// The key as written and the rest of a `key: value` line.
fn block_key(content: &str) -> Option<(&str, &str)> {
    let (key, rest) = content.split_once(':')?;
    (!key.is_empty() && (rest.is_empty() || rest.starts_with([' ', '\t'])))
        .then(|| (key, rest.trim_start()))
}

/// Whether `key` is a plain key of letters, digits, `_` and `-`, as the config's keys are.
fn is_plain(key: &str) -> bool {
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# StreamGate
monitoring:
  metrics:
    window: 5m
security:
  trusted_proxies: [\"10.0.0.0/8\"]
  auth:
    jwt:
      issuers:
        - issuer: https://id.example
          key: |
            -----BEGIN PUBLIC KEY-----
            cors: not a key
            -----END PUBLIC KEY-----
  cors: {allow_origins: [\"x\"]}
optimization:
  cache:
    routes:
      /files/{id}:
        ttl: 30s
    max_size: 10
";

    #[test]
    fn block_keys_are_found_by_path_with_their_line_and_column() {
        let keys = block_keys(TEXT);
        let at = |path: &str| {
            keys.iter()
                .find(|k| k.path == path)
                .map(|k| (k.line, k.column))
        };
        assert_eq!(at("monitoring"), Some((2, 1)));
        assert_eq!(at("monitoring.metrics.window"), Some((4, 5)));
        assert_eq!(at("security.trusted_proxies"), Some((6, 3)));
        assert_eq!(at("security.auth.jwt.issuers"), Some((9, 7)));
        // After a block scalar inside a sequence, the next key is found at its own depth.
        assert_eq!(at("security.cors"), Some((15, 3)));
        assert!(
            keys.iter()
                .all(|k| !k.path.starts_with("security.auth.jwt.issuers."))
        );
        // A key that is not plain (a route) has no path, nor have the keys under it.
        assert!(
            keys.iter()
                .all(|k| !k.path.starts_with("optimization.cache.routes."))
        );
        assert_eq!(at("optimization.cache.max_size"), Some((21, 5)));
    }

    /// A section's key, and each of its children's key with their leaf keys.
    type Section = (String, Vec<(String, Vec<String>)>);

    /// A block mapping of sections as YAML lines, each key with its path and line, with a
    /// comment and a blank line where `noise` says.
    fn render(tree: &[Section], noise: &[bool]) -> (String, Vec<(String, usize)>) {
        let mut text = String::new();
        let mut expected = Vec::new();
        let mut line = 0;
        let mut push = |text: &mut String, indent: usize, body: &str| {
            if noise
                .get(line % noise.len().max(1))
                .copied()
                .unwrap_or(false)
            {
                text.push_str("  # a comment: with a colon\n\n");
                line += 2;
            }
            text.push_str(&" ".repeat(indent));
            text.push_str(body);
            text.push('\n');
            line += 1;
            line
        };
        for (key, children) in tree {
            let at = push(&mut text, 0, &format!("{key}:"));
            expected.push((key.clone(), at));
            for (child, leaves) in children {
                let at = push(&mut text, 2, &format!("{child}:"));
                expected.push((format!("{key}.{child}"), at));
                for leaf in leaves {
                    let at = push(&mut text, 4, &format!("{leaf}: 1"));
                    expected.push((format!("{key}.{child}.{leaf}"), at));
                }
            }
        }
        (text, expected)
    }

    proptest::proptest! {
        #[test]
        fn every_block_key_is_found_at_its_line(
            tree in proptest::collection::vec(
                ("[a-z][a-z_]{0,6}", proptest::collection::vec(
                    ("[a-z][a-z_]{0,6}", proptest::collection::vec("[a-z][a-z0-9_]{0,6}", 0..3)),
                    0..3,
                )),
                1..4,
            ),
            noise in proptest::collection::vec(proptest::bool::ANY, 1..5),
        ) {
            let (text, expected) = render(&tree, &noise);
            let keys = block_keys(&text);
            for (path, line) in expected {
                proptest::prop_assert!(
                    keys.iter().any(|k| k.path == path && k.line == line),
                    "{path} at line {line} in\n{text}"
                );
            }
        }

        #[test]
        fn any_text_is_read_without_panicking(text in "[ a-z:#|>\\-\n\t\"]{0,200}") {
            let _ = Origin::new("s.yaml", &text).error("a.b", "bad");
        }
    }

    #[test]
    fn an_error_is_placed_at_its_key_its_parent_or_the_variable_that_set_it() {
        let mut origin = Origin::new("s.yaml", TEXT);
        assert_eq!(
            origin.error("security.cors", "bad").to_string(),
            "s.yaml:15:3: security.cors: bad"
        );
        assert_eq!(
            origin.error("security.rate_limiting", "bad").to_string(),
            "s.yaml:5:1: security.rate_limiting: bad"
        );
        assert_eq!(
            origin.error("optimization.cache", "bad").to_string(),
            "s.yaml:17:3: optimization.cache: bad"
        );
        assert_eq!(
            origin.error("tracing.level", "bad").to_string(),
            "s.yaml: tracing.level: bad"
        );
        origin.overridden(
            "security.cors.allow_origins",
            "STREAMGATE__SECURITY__CORS__ALLOW_ORIGINS",
        );
        assert_eq!(
            origin.error("security.cors", "bad").to_string(),
            "STREAMGATE__SECURITY__CORS__ALLOW_ORIGINS: security.cors: bad"
        );
        assert_eq!(
            origin.error("security.corsets", "bad").to_string(),
            "s.yaml:5:1: security.corsets: bad"
        );
        assert_eq!(
            Origin::default().error("security.cors", "bad").to_string(),
            "config: security.cors: bad"
        );
    }
}
