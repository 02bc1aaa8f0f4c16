//! The socket boundary: the only module with `unsafe` in the engine.
//!
//! It checks that a raw file descriptor handed over by a host is a connected TCP
//! socket, takes ownership of it, and sends queued frames with one
//! `sendmsg(MSG_NOSIGNAL)` per flush (never `write`/`writev`: inside a host
//! process SIGPIPE is not ignored, and writing to a closed peer would kill it).

use std::collections::VecDeque;
use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

/// Most iovec entries per `sendmsg` (Linux IOV_MAX is 1024; 64 covers a deep queue per call).
pub(crate) const MAX_IOV: usize = 64;

fn bad_socket(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadSocket, message)
}

fn set_sockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for reads of the size given; setsockopt only
    // changes an option of the socket `fd` (EBADF/ENOTSOCK/EINVAL on a bad one).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the kernel drop a connection whose peer vanished (no FIN, no RST) within about
/// `timeout`, whatever the publish rate: `TCP_USER_TIMEOUT` ends it when sent bytes stay
/// unacknowledged that long, and keepalive probes (after `timeout / 2` of silence, every
/// `timeout / 6`) give an idle connection unacknowledged bytes to time out on. The
/// socket then reports `ETIMEDOUT`, and the client leaves with reason `timeout`.
fn detect_dead_peer(fd: RawFd, timeout: Duration) {
    // The kernel takes keepalive times up to 32767 s.
    let secs = |d: Duration| d.as_secs().clamp(1, 32_767) as libc::c_int;
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // Each is set on its own: none can fail on a TCP socket, and were one to, the
    // others still help.
    let _ = set_sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms);
    let _ = set_sockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    let _ = set_sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(timeout / 2));
    let _ = set_sockopt_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        secs(timeout / 6),
    );
    let _ = set_sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// `SO_COOKIE` (Linux 4.12): a socket's 64-bit number, never reused while the system runs.
const SO_COOKIE: libc::c_int = 57;

/// The socket's cookie, or `None` on a kernel without `SO_COOKIE`.
fn socket_cookie(fd: RawFd) -> Option<u64> {
    let mut value: u64 = 0;
    let mut len = mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; getsockopt only
    // reads `fd` and fails (ENOPROTOOPT on an old kernel) without writing otherwise.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&mut value as *mut u64).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == mem::size_of::<u64>()).then_some(value)
}

fn sockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; getsockopt only
    // reads `fd` and fails with EBADF/ENOTSOCK on a bad descriptor.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Which socket a descriptor refers to: the same for every duplicate of it (`dup`,
/// `fcntl(F_DUPFD)`, a descriptor passed over a Unix socket), unlike the fd number. It
/// is the socket's cookie, unique for as long as the system runs; on a kernel without
/// cookies, its inode number (unique among open sockets, but reused in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SocketId {
    Cookie(u64),
    Inode(u64),
}

/// Checks that `fd` is an open, connected TCP socket, without changing anything about it.
/// This is the one check of a handed-over descriptor: bindings do not repeat it.
pub(crate) fn check_tcp_socket(fd: BorrowedFd<'_>) -> Result<SocketId> {
    let fd = fd.as_raw_fd();
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a valid out-pointer for one `struct stat`; fstat only reads `fd`.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        let err = io::Error::last_os_error();
        return Err(bad_socket(format!("fd {fd} is not open: {err}")));
    }
    // SAFETY: fstat returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    let mode = stat.st_mode;
    if mode & libc::S_IFMT != libc::S_IFSOCK {
        let what = match mode & libc::S_IFMT {
            libc::S_IFIFO => "a pipe",
            libc::S_IFREG => "a regular file",
            libc::S_IFCHR => "a character device",
            libc::S_IFDIR => "a directory",
            _ => "not a socket",
        };
        return Err(bad_socket(format!("fd {fd} is {what}, not a TCP socket")));
    }
    let check = |level, name, what: &str| {
        sockopt_int(fd, level, name)
            .map_err(|e| bad_socket(format!("fd {fd}: cannot read {what}: {e}")))
    };
    let domain = check(libc::SOL_SOCKET, libc::SO_DOMAIN, "SO_DOMAIN")?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(bad_socket(format!("fd {fd} is not a TCP/IP socket")));
    }
    if check(libc::SOL_SOCKET, libc::SO_TYPE, "SO_TYPE")? != libc::SOCK_STREAM {
        return Err(bad_socket(format!("fd {fd} is not a stream (TCP) socket")));
    }
    if check(libc::SOL_SOCKET, libc::SO_ACCEPTCONN, "SO_ACCEPTCONN")? != 0 {
        return Err(bad_socket(format!(
            "fd {fd} is a listening socket, not an accepted connection"
        )));
    }
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::uninit();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is valid for `len` bytes; getpeername only reads `fd`.
    if unsafe { libc::getpeername(fd, addr.as_mut_ptr().cast(), &mut len) } != 0 {
        let err = io::Error::last_os_error();
        return Err(bad_socket(format!("fd {fd} is not connected: {err}")));
    }
    Ok(match socket_cookie(fd) {
        Some(cookie) => SocketId::Cookie(cookie),
        None => SocketId::Inode(stat.st_ino),
    })
}

/// Makes a socket that passed [`check_tcp_socket`] a non-blocking TCP stream with
/// TCP_NODELAY and, with a `write_timeout`, dead-peer detection tied to it
/// ([`detect_dead_peer`]).
pub(crate) fn own_tcp_socket(fd: OwnedFd, write_timeout: Option<Duration>) -> std::net::TcpStream {
    let stream = std::net::TcpStream::from(fd);
    // Neither can fail on a valid TCP socket; were one to, the stream still works (a
    // blocking socket stays correct because every send uses MSG_DONTWAIT and reads stop
    // at the first short read).
    let _ = stream.set_nonblocking(true);
    let _ = stream.set_nodelay(true);
    if let Some(timeout) = write_timeout {
        // Without it a vanished peer is only found by TCP's own retransmission limit
        // (about 15 minutes) or a full buffer.
        detect_dead_peer(stream.as_raw_fd(), timeout);
    }
    stream
}

/// Sends queued frames, starting `offset` bytes into the first one, in one `sendmsg` call
/// with `MSG_NOSIGNAL | MSG_DONTWAIT`. Returns the number of bytes the kernel took.
pub(crate) fn send_frames(
    socket: &impl AsRawFd,
    frames: &VecDeque<Bytes>,
    offset: usize,
) -> io::Result<usize> {
    let mut iov: [MaybeUninit<libc::iovec>; MAX_IOV] = [MaybeUninit::uninit(); MAX_IOV];
    let mut count = 0;
    for (i, frame) in frames.iter().take(MAX_IOV).enumerate() {
        let bytes = if i == 0 { &frame[offset..] } else { &frame[..] };
        iov[count].write(libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        });
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    send_iov(socket.as_raw_fd(), iov.as_ptr().cast(), count)
}

/// Sends one buffer with `MSG_NOSIGNAL | MSG_DONTWAIT`.
pub(crate) fn send_bytes(socket: &impl AsRawFd, bytes: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    send_iov(socket.as_raw_fd(), &iov, 1)
}

fn send_iov(fd: RawFd, iov: *const libc::iovec, count: usize) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = iov as *mut libc::iovec;
    msg.msg_iovlen = count as _;
    loop {
        // SAFETY: `iov` points to `count` initialised iovecs whose buffers are borrowed from
        // frames that outlive this call; sendmsg only reads them. MSG_NOSIGNAL turns SIGPIPE
        // into EPIPE, so a vanished peer cannot kill the host process.
        let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
