//! Pod networking for real (root): a bridge and a veth into a network namespace this test makes,
//! then TCP round trips from the host to the pod's IPv4 and IPv6 addresses (dual stack). Traffic
//! stays on this machine.

use skiff_node::net::{Net, PodAddress};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
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
    let gateway = IpAddr::V4(Ipv4Addr::new(10, 199, 7, 1));
    let pod_ip = IpAddr::V4(Ipv4Addr::new(10, 199, 7, 2));
    let gateway6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x199, 7, 0, 0, 0, 0, 1));
    let pod_ip6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x199, 7, 0, 0, 0, 0, 2));
    let addresses =
        [PodAddress { ip: pod_ip, prefix: 24, gateway }, PodAddress { ip: pod_ip6, prefix: 64, gateway: gateway6 }];

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let net = Net::connect()?;
        net.ensure_bridge(&bridge, &[(gateway, 24), (gateway6, 64)]).await?;
        net.ensure_bridge(&bridge, &[(gateway, 24), (gateway6, 64)]).await?; // idempotent
        net.attach_pod(&bridge, &veth, netns.as_fd(), &addresses).await
    });

    let outcome = result.map_err(|e| e.to_string()).and_then(|()| {
        // A server inside the pod's namespace, on every address (both families).
        let fd = netns.try_clone().expect("dup");
        let server = std::thread::spawn(move || {
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let l = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 18080)).expect("bind in pod");
            for _ in 0..2 {
                let (mut s, _) = l.accept().expect("accept");
                s.write_all(b"pong").expect("write");
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let mut answers = Vec::new();
        for ip in [pod_ip, pod_ip6] {
            let mut s = TcpStream::connect_timeout(&SocketAddr::from((ip, 18080)), Duration::from_secs(5))
                .map_err(|e| format!("{ip}: {e}"))?;
            let mut buf = String::new();
            s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
            answers.push(buf);
        }
        server.join().map_err(|_| "server thread".to_string())?;
        Ok(answers.join(" "))
    });

    rt.block_on(async {
        if let Ok(net) = Net::connect() {
            let _ = net.delete(&veth).await;
            let _ = net.delete(&bridge).await;
        }
    });
    assert_eq!(outcome.as_deref(), Ok("pong pong"));
    rt.block_on(async {
        let net = Net::connect().expect("netlink");
        assert_eq!(net.index(&veth).await.expect("lookup"), None, "veth removed");
        assert_eq!(net.index(&bridge).await.expect("lookup"), None, "bridge removed");
    });
}
