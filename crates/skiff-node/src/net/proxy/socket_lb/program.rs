//! The two cgroup socket-address programs, as instructions. Pure.
//!
//! Maps (layouts in [`super::plan`]):
//! - `services`: (cluster IP, port, protocol) -> (slot, count)
//! - `backends`: (slot, index) -> (endpoint IP, port)
//! - `origins` (LRU): socket cookie -> the (cluster IP, port) the socket asked for

use crate::net::bpf::asm::*;

/// `struct bpf_sock_addr` offsets.
const USER_IP4: i16 = 4;
const USER_PORT: i16 = 24;
const PROTOCOL: i16 = 36;

/// On `connect()` to a balanced Service address: pick one of its backends at random, connect
/// there instead, and remember what was asked for under the socket's cookie. Always allows the
/// connect (anything not in the map is left to the nftables rules).
pub fn connect4(services: i32, backends: i32, origins: i32) -> Result<Vec<Insn>, UnknownLabel> {
    let mut a = Asm::default();
    a.mov(R6, R1)
        // key at fp-8: user_ip4, user_port | protocol << 16
        .load32(R2, R6, USER_IP4)
        .store32(FP, -8, R2)
        .load32(R2, R6, USER_PORT)
        .load32(R3, R6, PROTOCOL)
        .lsh_imm(R3, 16)
        .or(R2, R3)
        .store32(FP, -4, R2)
        .load_map(R1, services)
        .mov(R2, FP)
        .add_imm(R2, -8)
        .call(MAP_LOOKUP_ELEM)
        .jump_eq(R0, 0, "allow")
        .load32(R7, R0, 4) // count
        .jump_eq(R7, 0, "allow")
        .load32(R8, R0, 0) // slot
        .call(GET_PRANDOM_U32)
        .mod32(R0, R7)
        // key at fp-16: slot, index
        .store32(FP, -16, R8)
        .store32(FP, -12, R0)
        .load_map(R1, backends)
        .mov(R2, FP)
        .add_imm(R2, -16)
        .call(MAP_LOOKUP_ELEM)
        .jump_eq(R0, 0, "allow")
        .mov(R7, R0)
        // origin at fp-24: what was asked for, before it is rewritten
        .load32(R2, R6, USER_IP4)
        .store32(FP, -24, R2)
        .load32(R2, R6, USER_PORT)
        .store32(FP, -20, R2)
        .load32(R2, R7, 0)
        .store32(R6, USER_IP4, R2)
        .load32(R2, R7, 4)
        .store32(R6, USER_PORT, R2)
        .mov(R1, R6)
        .call(GET_SOCKET_COOKIE)
        .store64(FP, -32, R0)
        .load_map(R1, origins)
        .mov(R2, FP)
        .add_imm(R2, -32)
        .mov(R3, FP)
        .add_imm(R3, -24)
        .mov_imm(Reg(4), 0) // BPF_ANY
        .call(MAP_UPDATE_ELEM)
        .label("allow")
        .mov_imm(R0, 1)
        .exit();
    a.finish()
}

/// On `getpeername()` of a socket [`connect4`] rewrote: answer the Service address it asked
/// for, as a connection through the nftables rules would.
pub fn getpeername4(origins: i32) -> Result<Vec<Insn>, UnknownLabel> {
    let mut a = Asm::default();
    a.mov(R6, R1)
        .call(GET_SOCKET_COOKIE)
        .store64(FP, -8, R0)
        .load_map(R1, origins)
        .mov(R2, FP)
        .add_imm(R2, -8)
        .call(MAP_LOOKUP_ELEM)
        .jump_eq(R0, 0, "done")
        .load32(R2, R0, 0)
        .store32(R6, USER_IP4, R2)
        .load32(R2, R0, 4)
        .store32(R6, USER_PORT, R2)
        .label("done")
        .mov_imm(R0, 1)
        .exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_assemble_and_end_by_allowing() {
        for insns in [connect4(3, 4, 5).expect("assembles"), getpeername4(5).expect("assembles")] {
            let n = insns.len();
            assert_eq!(insns[n - 2].to_bytes(), [0xb7, 0, 0, 0, 1, 0, 0, 0], "r0 = 1");
            assert_eq!(insns[n - 1].to_bytes()[0], 0x95, "exit");
            // Every jump lands inside the program.
            for (i, insn) in insns.iter().enumerate() {
                if insn.code & 0x07 == 0x05 && insn.code != 0x85 && insn.code != 0x95 {
                    let target = i as i64 + 1 + i64::from(insn.off);
                    assert!((0..n as i64).contains(&target), "jump {i} to {target}");
                }
            }
        }
        // The map descriptors are where the kernel looks for them.
        let maps: Vec<i32> =
            connect4(3, 4, 5).expect("assembles").iter().filter(|i| i.code == 0x18).map(|i| i.imm).collect();
        assert_eq!(maps, vec![3, 4, 5]);
    }
}
