//! One page of a sorted key listing with prefix, delimiter and an exclusive start
//! (`marker`, `start-after` or a decoded continuation token). Shared by ListObjects,
//! ListObjectsV2 and ListMultipartUploads.

use std::collections::BTreeMap;
use std::ops::Bound;

/// One listed entry: an object, or a common prefix (counted as one entry).
#[derive(Debug, PartialEq)]
pub enum Entry<'a, T> {
    Object(&'a str, &'a T),
    Prefix(String),
}

/// A page of entries in ascending UTF-8 byte order of key.
#[derive(Debug)]
pub struct Page<'a, T> {
    pub entries: Vec<Entry<'a, T>>,
    pub truncated: bool,
    /// The last entry's key or prefix, when truncated.
    pub next: Option<String>,
}

/// Lists up to `max` entries of `items` after `after` (exclusive).
///
/// With a delimiter, a key whose remainder after `prefix` contains it is rolled up into
/// the common prefix ending at the first delimiter. A common prefix that sorts at or
/// before `after` was returned on an earlier page and is skipped.
pub fn page<'a, T>(
    items: &'a BTreeMap<String, T>,
    prefix: &str,
    delimiter: &str,
    after: &str,
    max: usize,
) -> Page<'a, T> {
    // Start at the later of the exclusive start and the prefix itself.
    let start = if after >= prefix && !after.is_empty() {
        Bound::Excluded(after)
    } else if prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(prefix)
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    let mut last_prefix: Option<String> = None;
    for (key, item) in items.range::<str, _>((start, Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            if key.as_str() > prefix {
                break;
            }
            continue;
        }
        let rolled_up = (!delimiter.is_empty())
            .then(|| key[prefix.len()..].find(delimiter))
            .flatten()
            .map(|at| key[..prefix.len() + at + delimiter.len()].to_owned());
        if let Some(common) = rolled_up {
            if last_prefix.as_deref() == Some(common.as_str())
                || (!after.is_empty() && common.as_str() <= after)
            {
                continue;
            }
            if entries.len() == max {
                truncated = true;
                break;
            }
            last_prefix = Some(common.clone());
            entries.push(Entry::Prefix(common));
            continue;
        }
        if entries.len() == max {
            truncated = true;
            break;
        }
        entries.push(Entry::Object(key.as_str(), item));
    }
    let next = truncated
        .then(|| entries.last())
        .flatten()
        .map(|entry| match entry {
            Entry::Object(key, _) => (*key).to_owned(),
            Entry::Prefix(common) => common.clone(),
        });
    Page {
        entries,
        truncated,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|k| ((*k).to_owned(), ())).collect()
    }

    fn names<T>(page: &Page<'_, T>) -> Vec<String> {
        page.entries
            .iter()
            .map(|e| match e {
                Entry::Object(k, _) => (*k).to_owned(),
                Entry::Prefix(p) => format!("{p}*"),
            })
            .collect()
    }

    #[test]
    fn prefix_and_delimiter_roll_up() {
        let items = items(&["a/1", "a/2", "b/x/1", "b/y", "c"]);
        let page = page(&items, "", "/", "", 100);
        assert_eq!(names(&page), ["a/*", "b/*", "c"]);
        assert!(!page.truncated);
        let page = super::page(&items, "b/", "/", "", 100);
        assert_eq!(names(&page), ["b/x/*", "b/y"]);
    }

    #[test]
    fn start_after_before_or_after_the_prefix() {
        let items = items(&["a", "b/1", "b/2", "c"]);
        assert_eq!(names(&page(&items, "b/", "", "a", 10)), ["b/1", "b/2"]);
        assert_eq!(names(&page(&items, "b/", "", "b/1", 10)), ["b/2"]);
        assert_eq!(
            names(&page(&items, "b/", "", "b/9", 10)),
            Vec::<String>::new()
        );
        assert_eq!(names(&page(&items, "", "", "b/1", 10)), ["b/2", "c"]);
    }

    #[test]
    fn paging_visits_every_entry_once() {
        let keys: Vec<String> = (0..25).map(|i| format!("k{i:03}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut items = items(&refs);
        items.insert("d/1".into(), ());
        items.insert("d/2".into(), ());
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = page(&items, "", "/", &after, 4);
            seen.extend(names(&page));
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        assert_eq!(seen.len(), 26);
        assert_eq!(seen[0], "d/*");
        assert_eq!(seen[25], "k024");
    }
}
