//! `data_dir` persistence: the whole instance (tables, rows, streams with their
//! records) is written as one JSON file after every change and read back at start, so
//! tables, rows, stream ids and iterators survive a restart.

use std::path::{Path, PathBuf};

use super::state::Instance;

const FILE: &str = "tablestore.json";

/// Why the saved state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("tablestore state {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tablestore state {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Reads the saved instance; an absent file is an empty instance.
pub fn load(dir: &Path) -> Result<Instance, PersistError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| PersistError::Json { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Instance::default()),
        Err(source) => Err(PersistError::Io { path, source }),
    }
}

/// Writes the instance atomically (temporary file, then rename).
pub fn save(dir: &Path, instance: &Instance) -> Result<(), PersistError> {
    let path = dir.join(FILE);
    let io = |source| PersistError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec(instance).map_err(|source| PersistError::Json {
        path: path.clone(),
        source,
    })?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Serializes a map with non-string keys as a list of pairs (JSON maps need string keys).
pub mod map_as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Vec::<(K, V)>::deserialize(d).map(|pairs| pairs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ots::plainbuffer::{PkValue, Value};
    use crate::ots::state::StoredRow;

    #[test]
    fn saved_state_reads_back_including_odd_doubles() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().tables.is_empty());
        let mut row = StoredRow::default();
        row.columns.insert(
            "d".into(),
            vec![(5, Value::Double(f64::NAN)), (4, Value::Double(-0.0))],
        );
        let json = serde_json::to_string(&(vec![PkValue::Integer(1)], row)).unwrap();
        let (key, back): (Vec<PkValue>, StoredRow) = serde_json::from_str(&json).unwrap();
        assert_eq!(key, vec![PkValue::Integer(1)]);
        let versions = &back.columns["d"];
        assert!(matches!(versions[0].1, Value::Double(d) if d.is_nan()));
        assert!(matches!(versions[1].1, Value::Double(d) if d == 0.0 && d.is_sign_negative()));
        save(dir.path(), &Instance::default()).unwrap();
        assert!(dir.path().join(FILE).exists());
    }
}
