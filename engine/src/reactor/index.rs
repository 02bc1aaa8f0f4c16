//! Which of a reactor's clients (by slab key) belong to each channel, or to each user.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexSet;

/// Members by name; a name without members is not kept.
#[derive(Default)]
pub(super) struct Index(HashMap<Arc<str>, IndexSet<usize>>);

impl Index {
    pub fn insert(&mut self, name: Arc<str>, key: usize) {
        self.0.entry(name).or_default().insert(key);
    }

    pub fn remove(&mut self, name: &str, key: usize) {
        if let Some(members) = self.0.get_mut(name) {
            members.swap_remove(&key);
            if members.is_empty() {
                self.0.remove(name);
            }
        }
    }

    /// The members of `name`, in no particular order.
    pub fn members(&self, name: &str) -> impl Iterator<Item = usize> + '_ {
        self.0.get(name).into_iter().flatten().copied()
    }

    /// Forgets `name`; returns its members.
    pub fn take(&mut self, name: &str) -> IndexSet<usize> {
        self.0.remove(name).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_and_go_and_empty_names_are_forgotten() {
        let mut index = Index::default();
        index.insert("a".into(), 1);
        index.insert("a".into(), 2);
        index.insert("a".into(), 2);
        index.insert("b".into(), 1);
        let mut a: Vec<usize> = index.members("a").collect();
        a.sort();
        assert_eq!(a, [1, 2]);
        index.remove("a", 1);
        index.remove("a", 7);
        assert_eq!(index.members("a").collect::<Vec<_>>(), [2]);
        index.remove("a", 2);
        assert!(!index.0.contains_key("a"));
        assert_eq!(index.members("nobody").count(), 0);
        assert_eq!(index.take("b").into_iter().collect::<Vec<_>>(), [1]);
        assert!(index.take("b").is_empty());
    }
}
