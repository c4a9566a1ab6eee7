//! Pod networking for real (root): a bridge and a veth into a network namespace this test makes,
//! then a TCP round trip from the host to the pod's address. Traffic stays on this machine.

use skiff_node::net::Net;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn host_reaches_a_pod_address_through_the_bridge() {
    let id = std::process::id() % 100_000;
    let ns = Netns(format!("skiff-test-{id}"));
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().expect("ip netns add").success());
    let netns = std::fs::File::open(format!("/run/netns/{}", ns.0)).expect("open netns");
    let (bridge, veth) = (format!("skb{id}"), format!("skv{id}"));
    let gateway = Ipv4Addr::new(10, 199, 7, 1);
    let pod_ip = Ipv4Addr::new(10, 199, 7, 2);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let net = Net::connect()?;
        net.ensure_bridge(&bridge, gateway, 24).await?;
        net.ensure_bridge(&bridge, gateway, 24).await?; // idempotent
        net.attach_pod(&bridge, &veth, netns.as_fd(), pod_ip, 24, gateway).await
    });

    let outcome = result.map_err(|e| e.to_string()).and_then(|()| {
        // A server inside the pod's namespace.
        let fd = netns.try_clone().expect("dup");
        let server = std::thread::spawn(move || {
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let l = TcpListener::bind((pod_ip, 18080)).expect("bind in pod");
            let (mut s, _) = l.accept().expect("accept");
            s.write_all(b"pong").expect("write");
        });
        std::thread::sleep(Duration::from_millis(200));
        let mut s = TcpStream::connect_timeout(&SocketAddr::from((pod_ip, 18080)), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
        server.join().map_err(|_| "server thread".to_string())?;
        Ok(buf)
    });

    rt.block_on(async {
        if let Ok(net) = Net::connect() {
            let _ = net.delete(&veth).await;
            let _ = net.delete(&bridge).await;
        }
    });
    assert_eq!(outcome.as_deref(), Ok("pong"));
    rt.block_on(async {
        let net = Net::connect().expect("netlink");
        assert_eq!(net.index(&veth).await.expect("lookup"), None, "veth removed");
        assert_eq!(net.index(&bridge).await.expect("lookup"), None, "bridge removed");
    });
}
