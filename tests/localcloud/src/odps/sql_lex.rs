//! The SQL tokenizer: words, back-quoted names, string literals (`'…'` or `"…"`,
//! backslash escapes), numbers, punctuation; `--` comments are skipped. Each token
//! carries its character offset for error positions.

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Sym(char),
}

impl Tok {
    pub fn text(&self) -> String {
        match self {
            Tok::Word(s) | Tok::Quoted(s) | Tok::Num(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Sym(c) => c.to_string(),
        }
    }
}

/// Splits `src` into tokens; an error carries the offending offset.
pub fn tokenize(src: &[char]) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && src.get(i + 1) == Some(&'-') {
            while i < src.len() && src[i] != '\n' {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            while i < src.len() && (src[i].is_alphanumeric() || src[i] == '_') {
                i += 1;
            }
            toks.push((Tok::Word(src[start..i].iter().collect()), start));
        } else if c.is_ascii_digit()
            || (c == '-' && src.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i += 1;
            while i < src.len() && (src[i].is_ascii_digit() || src[i] == '.') {
                i += 1;
            }
            toks.push((Tok::Num(src[start..i].iter().collect()), start));
        } else if c == '`' {
            let end = src[i + 1..]
                .iter()
                .position(|&d| d == '`')
                .ok_or((start, "unclosed back-quote".to_owned()))?;
            toks.push((Tok::Quoted(src[i + 1..i + 1 + end].iter().collect()), start));
            i += end + 2;
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match src.get(i) {
                    None => return Err((start, "unclosed string literal".to_owned())),
                    Some('\\') => {
                        if let Some(&n) = src.get(i + 1) {
                            text.push(n);
                        }
                        i += 2;
                    }
                    Some(&d) if d == c => {
                        i += 1;
                        break;
                    }
                    Some(&d) => {
                        text.push(d);
                        i += 1;
                    }
                }
            }
            toks.push((Tok::Str(text), start));
        } else if "(),;=.*<>:".contains(c) {
            toks.push((Tok::Sym(c), start));
            i += 1;
        } else {
            return Err((start, format!("unexpected character '{c}'")));
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(&s.chars().collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    #[test]
    fn tokens_comments_and_literals() {
        assert_eq!(
            toks("a.`b c` -- note\n= 'it\\'s' -1.5;"),
            vec![
                Tok::Word("a".into()),
                Tok::Sym('.'),
                Tok::Quoted("b c".into()),
                Tok::Sym('='),
                Tok::Str("it's".into()),
                Tok::Num("-1.5".into()),
                Tok::Sym(';'),
            ]
        );
        let chars: Vec<char> = "x = 'open".chars().collect();
        assert_eq!(tokenize(&chars).unwrap_err().0, 4);
        let chars: Vec<char> = "a # b".chars().collect();
        assert_eq!(tokenize(&chars).unwrap_err().0, 2);
    }
}
