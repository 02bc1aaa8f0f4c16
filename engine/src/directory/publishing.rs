//! Publishing and history: sequence numbers, ids and rings, expiry, the replay a
//! reconnecting client gets; and the channels' lifecycle that history decides (a
//! channel is forgotten once it has no members, no history and no settings).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::channel_set::ChannelSet;
use crate::event::Event;
use crate::filter::Filter;
use crate::history::{Entry as HistoryEntry, HistoryLimits, Ring};
use crate::lifecycle::ClientId;

use super::{Channel, ChannelInfo, Directory, Published, Replay, ReplayBudget, ReplayPlan, Target};

impl Directory {
    /// Gives `event` its sequence number and id, encodes it once, and records it in the
    /// target's history when that is on (`now`: its time there). The caller enqueues the
    /// frame before unlocking.
    pub fn publish(
        &mut self,
        target: Target<'_>,
        event: &Event,
        filter: Option<&Arc<Filter>>,
        now: Instant,
    ) -> Published {
        self.last_seq += 1;
        let seq = self.last_seq;
        let frame = match &event.id {
            Some(id) => event.encode_with_id(Some(id)),
            None if self.auto_ids => {
                self.ids.write(seq, &mut self.id_text);
                event.encode_with_id(Some(&self.id_text))
            }
            None => event.encode_with_id(None),
        };
        let defaults = self.defaults;
        let (ring, limits, count, name) = match target {
            Target::Channel(name) => {
                let channel = self.channel_mut(name);
                let limits = channel.limits.unwrap_or(defaults);
                let name = channel.name.clone();
                (&mut channel.history, limits, channel.members, Some(name))
            }
            Target::All => (&mut self.all, defaults, self.clients.len(), None),
        };
        let recorded = limits.enabled();
        if !recorded {
            ring.skip(seq);
        } else {
            ring.push(
                HistoryEntry {
                    seq,
                    // Only the caller's own id is kept: a `Last-Event-ID` in the engine's
                    // format is resolved from its number (see `plan_replay`).
                    id: event.id.as_deref().map(Arc::from),
                    frame: frame.clone(),
                    at: now,
                    filter: filter.cloned(),
                },
                limits,
            );
        }
        let mut channel = name;
        if let Some(name) = &channel {
            // A channel that keeps nothing and has nobody need not be remembered.
            if count == 0 && !recorded && self.channels.get(&**name).is_some_and(Channel::is_vacant)
            {
                self.forget_channel(name);
                channel = None;
            }
        }
        Published {
            frame,
            seq: if recorded { seq } else { 0 },
            count,
            channel,
        }
    }

    /// Drops history past its age everywhere and forgets channels left with nothing.
    pub fn expire_history(&mut self, now: Instant) {
        let defaults = self.defaults;
        self.all.trim(defaults, now);
        for channel in self.channels.values_mut() {
            channel
                .history
                .trim(channel.limits.unwrap_or(defaults), now);
        }
        self.forget_channels_where(Channel::is_vacant);
    }

    /// Client `id` left channel `name`.
    pub(super) fn leave(&mut self, id: ClientId, name: &str) {
        let shard = self.shard_of(id);
        if let Some(channel) = self.channels.get_mut(name) {
            channel.leave(shard);
            if channel.is_vacant() {
                self.forget_channel(name);
            }
        }
    }

    /// Removes a channel, remembering how far its events went (see `forgotten_upto`).
    pub(super) fn forget_channel(&mut self, name: &str) {
        if let Some(channel) = self.channels.remove(name) {
            self.forgotten_upto = self.forgotten_upto.max(channel.history.newest_seq());
        }
    }

    pub(super) fn forget_channels_where(&mut self, forget: impl Fn(&Channel) -> bool) -> usize {
        let forgotten = &mut self.forgotten_upto;
        let before = self.channels.len();
        self.channels.retain(|_, channel| {
            let drop = forget(channel);
            if drop {
                *forgotten = (*forgotten).max(channel.history.newest_seq());
            }
            !drop
        });
        before - self.channels.len()
    }

    /// The last sequence number given out: a client connecting now has seen up to it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The engine id of the position now (`last_seq`): resuming from it replays what is
    /// published after this moment.
    pub fn position_id(&self) -> String {
        self.ids.id(self.last_seq)
    }

    /// Resolves a client's `Last-Event-ID` against its channels' history and collects
    /// the first part of what it missed.
    pub fn plan_replay(
        &mut self,
        channels: &ChannelSet,
        metadata: Option<&Map<String, Value>>,
        last_event_id: &str,
        budget: ReplayBudget,
    ) -> ReplayPlan {
        self.trim_rings(channels);
        let seq = match self.ids.parse(last_event_id) {
            Some(seq) if seq <= self.last_seq => Some(seq),
            Some(_) => None,
            None => self
                .rings(channels)
                .find_map(|ring| ring.find_id(last_event_id)),
        };
        let Some(seq) = seq else {
            return ReplayPlan::Gap;
        };
        let forgotten = channels
            .iter()
            .any(|name| !self.channels.contains_key(name));
        if self.rings(channels).any(|ring| ring.lost_after(seq))
            || (forgotten && self.forgotten_upto > seq)
        {
            return ReplayPlan::Gap;
        }
        ReplayPlan::Replay(self.collect_after(channels, metadata, seq, budget))
    }

    /// The next part of a replay that was cut short by its budget.
    pub fn continue_replay(
        &mut self,
        channels: &ChannelSet,
        metadata: Option<&Map<String, Value>>,
        cursor: u64,
        budget: ReplayBudget,
    ) -> Replay {
        self.trim_rings(channels);
        self.collect_after(channels, metadata, cursor, budget)
    }

    pub(super) fn trim_rings(&mut self, channels: &ChannelSet) {
        let now = Instant::now();
        let defaults = self.defaults;
        self.all.trim(defaults, now);
        for name in channels {
            if let Some(channel) = self.channels.get_mut(name) {
                let limits = channel.limits.unwrap_or(defaults);
                channel.history.trim(limits, now);
            }
        }
    }

    pub(super) fn rings<'a>(&'a self, channels: &'a ChannelSet) -> impl Iterator<Item = &'a Ring> {
        channels
            .iter()
            .filter_map(|name| self.channels.get(name))
            .map(|c| &c.history)
            .chain(std::iter::once(&self.all))
    }

    /// Events after `seq` on these channels (and to all), in publish order, within the
    /// budget (at least one event when any is there).
    pub(super) fn collect_after(
        &self,
        channels: &ChannelSet,
        metadata: Option<&Map<String, Value>>,
        seq: u64,
        budget: ReplayBudget,
    ) -> Replay {
        let mut entries: Vec<&HistoryEntry> = self
            .rings(channels)
            .flat_map(|ring| ring.after(seq))
            .filter(|e| e.filter.as_ref().is_none_or(|f| f.matches(metadata)))
            .collect();
        entries.sort_unstable_by_key(|e| e.seq);
        let mut replay = Replay {
            frames: Vec::new(),
            cursor: seq,
            more: false,
        };
        let mut bytes = 0;
        for entry in entries {
            if !replay.frames.is_empty()
                && (replay.frames.len() >= budget.events
                    || bytes + entry.frame.len() > budget.bytes)
            {
                replay.more = true;
                break;
            }
            bytes += entry.frame.len();
            replay.frames.push(entry.frame.clone());
            replay.cursor = entry.seq;
        }
        replay
    }

    /// Sets a channel's history limits (creating the channel if needed).
    pub fn configure_channel(&mut self, name: &Arc<str>, limits: HistoryLimits) {
        let channel = self.channel_mut(name);
        channel.limits = Some(limits);
        channel.history.trim(limits, Instant::now());
    }

    /// How many channels the directory holds (with members, history or settings).
    pub fn channels_known(&self) -> usize {
        self.channels.len()
    }

    /// Every channel with its member count and history length.
    pub fn channel_infos(&self) -> Vec<ChannelInfo> {
        let mut list: Vec<ChannelInfo> = self
            .channels
            .iter()
            .map(|(name, c)| ChannelInfo {
                name: name.to_string(),
                members: c.members,
                history: c.history.len(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Takes every member out of `channel` (or, with `remove_clients`, forgets them:
    /// their shards disconnect them) and forgets the channel and its history.
    /// Returns how many members it had.
    pub fn close_channel(&mut self, channel: &str, remove_clients: bool) -> usize {
        // One pass over the clients, each an O(1) look-up: a rare call, and a member
        // index per channel would cost every connection memory.
        let members: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, e)| e.channels.contains(channel))
            .map(|(id, _)| *id)
            .collect();
        for id in &members {
            if remove_clients {
                self.remove_leaving(*id);
            } else if let Some(entry) = self.clients.get_mut(id) {
                entry.channels.swap_remove(channel);
                self.leave(*id, channel);
            }
        }
        self.forget_channel(channel);
        members.len()
    }

    /// Forgets channels without members, with their history and settings.
    pub fn remove_empty_channels(&mut self) -> usize {
        self.forget_channels_where(|c| c.members == 0)
    }
}
