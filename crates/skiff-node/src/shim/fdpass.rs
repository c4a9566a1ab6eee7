//! Passing a file descriptor over a Unix socket (SCM_RIGHTS), blocking: how a container's
//! terminal master comes from libcontainer, and how the shim hands a container's stdin to an
//! attach session.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};

/// Send `bytes` with `fd` attached, in one message.
pub fn send(socket: impl AsFd, bytes: &[u8], fd: Option<std::os::fd::BorrowedFd<'_>>) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    let fds = fd.map(|f| [f]);
    if let Some(fds) = &fds {
        ancillary.push(SendAncillaryMessage::ScmRights(fds));
    }
    let sent = sendmsg(socket, &[IoSlice::new(bytes)], &mut ancillary, SendFlags::NOSIGNAL)?;
    if sent < bytes.len() {
        return Err(std::io::Error::other("the message was cut short"));
    }
    Ok(())
}

/// Receive one message (up to `max` bytes) and the descriptor attached to it, if any. An empty
/// message is the end of the stream.
pub fn receive(socket: impl AsFd, max: usize) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut bytes = vec![0u8; max];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(socket, &mut [IoSliceMut::new(&mut bytes)], &mut ancillary, RecvFlags::CMSG_CLOEXEC)?;
    bytes.truncate(received.bytes);
    let fd = ancillary.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    Ok((bytes, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_pipe_end_crosses_a_socket() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (r, w) = std::io::pipe().expect("pipe");
        send(&a, b"hello\n", Some(w.as_fd())).expect("send");
        drop(w);
        let (bytes, fd) = receive(&b, 64).expect("receive");
        assert_eq!(bytes, b"hello\n");
        let mut w = std::fs::File::from(fd.expect("an fd came"));
        w.write_all(b"through the passed end").expect("write");
        drop(w);
        let mut got = String::new();
        let mut r = r;
        r.read_to_string(&mut got).expect("read");
        assert_eq!(got, "through the passed end");
        send(&a, b"no fd", None).expect("send");
        assert!(receive(&b, 64).expect("receive").1.is_none());
        drop(a);
        assert!(receive(&b, 64).expect("receive").0.is_empty(), "end of stream");
    }
}
