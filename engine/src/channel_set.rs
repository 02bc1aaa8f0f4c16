//! A client's channels: in the order it joined them, O(1) amortized to add, find and
//! remove however many it holds, and as small as a `Vec` for the few most clients hold
//! (an idle connection's memory is a figure users compare).

use std::sync::Arc;

use indexmap::IndexSet;

/// Past this many channels, lookups go through a hash index instead of a scan.
const SCAN_LIMIT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChannelSet {
    Few(Vec<Arc<str>>),
    /// Boxed: most clients never get here, and the enum stays the size of a `Vec`.
    Many(Box<IndexSet<Arc<str>>>),
}

impl Default for ChannelSet {
    fn default() -> Self {
        ChannelSet::Few(Vec::new())
    }
}

impl ChannelSet {
    pub fn new() -> ChannelSet {
        ChannelSet::default()
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            ChannelSet::Few(v) => v.iter().any(|c| &**c == name),
            ChannelSet::Many(s) => s.contains(name),
        }
    }

    /// Adds `name`; false when it was there already.
    pub fn insert(&mut self, name: Arc<str>) -> bool {
        match self {
            ChannelSet::Few(v) => {
                if v.contains(&name) {
                    return false;
                }
                if v.len() < SCAN_LIMIT {
                    v.push(name);
                } else {
                    let mut set: IndexSet<Arc<str>> = std::mem::take(v).into_iter().collect();
                    set.insert(name);
                    *self = ChannelSet::Many(Box::new(set));
                }
                true
            }
            ChannelSet::Many(s) => s.insert(name),
        }
    }

    /// Removes `name` (the last channel takes its place); false when it was not there.
    pub fn swap_remove(&mut self, name: &str) -> bool {
        match self {
            ChannelSet::Few(v) => match v.iter().position(|c| &**c == name) {
                Some(pos) => {
                    v.swap_remove(pos);
                    true
                }
                None => false,
            },
            ChannelSet::Many(s) => s.swap_remove(name),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match self {
            ChannelSet::Few(v) => Iter::Few(v.iter()),
            ChannelSet::Many(s) => Iter::Many(s.iter()),
        }
    }
}

/// The channels of a [`ChannelSet`], in join order.
pub(crate) enum Iter<'a> {
    Few(std::slice::Iter<'a, Arc<str>>),
    Many(indexmap::set::Iter<'a, Arc<str>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Arc<str>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(it) => it.next(),
            Iter::Many(it) => it.next(),
        }
    }
}

impl<'a> IntoIterator for &'a ChannelSet {
    type Item = &'a Arc<str>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<Arc<str>> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = Arc<str>>>(names: I) -> Self {
        let mut set = ChannelSet::new();
        for name in names {
            set.insert(name);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_join_order_and_set_semantics_across_the_switch() {
        let names: Vec<Arc<str>> = (0..20).map(|i| format!("c{i}").into()).collect();
        let mut set = ChannelSet::new();
        for (i, name) in names.iter().enumerate() {
            assert!(set.insert(name.clone()));
            assert!(!set.insert(name.clone()));
            assert_eq!(set.iter().count(), i + 1);
            assert_eq!(matches!(set, ChannelSet::Many(_)), i + 1 > SCAN_LIMIT);
        }
        let order: Vec<&str> = set.iter().map(|c| &**c).collect();
        assert_eq!(order, names.iter().map(|c| &**c).collect::<Vec<_>>());
        assert!(set.contains("c19") && !set.contains("c20"));
        assert!(set.swap_remove("c0"));
        assert!(!set.swap_remove("c0"));
        assert_eq!(set.iter().next().map(|c| &**c), Some("c19"));
        let mut few: ChannelSet = names[..3].iter().cloned().collect();
        assert!(few.swap_remove("c0"));
        assert_eq!(few.iter().map(|c| &**c).collect::<Vec<_>>(), ["c2", "c1"]);
    }
}
