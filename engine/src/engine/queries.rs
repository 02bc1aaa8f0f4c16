//! Questions about clients and channels: counts, registry queries, stats, metrics.

use std::sync::mpsc;

use crate::directory::ChannelInfo;
use crate::error::{Error, Result};
use crate::event::{validate_channel, validate_user};
use crate::lifecycle::ClientId;
use crate::reactor::command::{Command, Scope};
use crate::reactor::queue::Outbox;
use crate::registry::ClientInfo;
use crate::stats::Stats;

use super::Engine;

impl Engine {
    /// Clients connected now.
    pub fn client_count(&self) -> Result<usize> {
        self.check_open()?;
        Ok(self.directory().client_count())
    }

    /// Whether `client` is connected now (it has not left, nor begun to leave), answered
    /// from the engine's directory without waiting for a reactor.
    pub fn is_connected(&self, client: ClientId) -> Result<bool> {
        self.check_open()?;
        Ok(self.directory().contains(client))
    }

    /// Members of `channel` now.
    pub fn channel_count(&self, channel: &str) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        Ok(self.directory().channel_count(channel))
    }

    /// Connections of `user` now.
    pub fn user_count(&self, user: &str) -> Result<usize> {
        self.check_open()?;
        validate_user(user)?;
        Ok(self.directory().user_count(user))
    }

    /// Every channel the engine knows (with members, history or settings), by name.
    pub fn channels(&self) -> Result<Vec<ChannelInfo>> {
        self.check_open()?;
        Ok(self.directory().channel_infos())
    }

    /// One client, as its reactor sees it now. `NotFound` when it is not connected.
    pub fn get_client(&self, client: ClientId) -> Result<ClientInfo> {
        self.check_query_allowed()?;
        if !self.directory().contains(client) {
            return Err(Error::not_found(client));
        }
        self.query(Scope::One(client))?
            .pop()
            .ok_or_else(|| Error::not_found(client))
    }

    /// Every connected client, by id.
    pub fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.query(Scope::All)
    }

    /// The members of `channel`, by id (empty for an unknown channel).
    pub fn clients_in(&self, channel: &str) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        validate_channel(channel)?;
        self.query(Scope::Channel(channel.into()))
    }

    /// The connections of `user`, by id.
    pub fn clients_of(&self, user: &str) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        validate_user(user)?;
        self.query(Scope::User(user.into()))
    }

    /// Asks the shards: each answers in turn with every command issued before it (so a
    /// query waits behind at most the bounded command queue and one flush pass, and
    /// sees every call made before it).
    pub(super) fn query(&self, scope: Scope) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        let (reply, answers) = mpsc::channel();
        let shards: Vec<&Outbox> = match scope {
            Scope::One(client) => vec![self.shard_of(client)],
            _ => self.shards.iter().collect(),
        };
        for shard in shards {
            shard.send(Command::Query {
                scope: scope.clone(),
                reply: reply.clone(),
            });
            shard.wake();
        }
        drop(reply);
        let mut clients: Vec<ClientInfo> = answers.iter().flatten().collect();
        clients.sort_by_key(|c| c.id);
        Ok(clients)
    }

    /// The counters in Prometheus text exposition format (metrics named `sse_engine_*`).
    pub fn metrics(&self) -> String {
        let channels = self.directory().channels_known();
        crate::metrics::render(&self.stats(), channels)
    }

    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        let open = self.directory().client_count();
        self.shared.counters.snapshot(open)
    }
}
