//! eBPF instructions, encoded as the kernel reads them (`struct bpf_insn`), with named jump
//! targets. Only what skiff's own programs use; pure.

use std::collections::HashMap;

/// A register: r0 (return value), r1-r5 (arguments, clobbered by calls), r6-r9 (kept across
/// calls), r10 (the frame pointer, read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const FP: Reg = Reg(10);

/// Kernel helpers (`enum bpf_func_id`).
pub const MAP_LOOKUP_ELEM: i32 = 1;
pub const MAP_UPDATE_ELEM: i32 = 2;
pub const GET_PRANDOM_U32: i32 = 7;
pub const GET_SOCKET_COOKIE: i32 = 46;

/// `src_reg` of a 64-bit immediate load whose value is a map's file descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// One encoded instruction (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcode parts (`linux/bpf_common.h`, `linux/bpf.h`).
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const W: u8 = 0x00;
const DW: u8 = 0x18;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const K: u8 = 0x00;
const X: u8 = 0x08;
const ADD: u8 = 0x00;
const OR: u8 = 0x40;
const LSH: u8 = 0x60;
const MOD: u8 = 0x90;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// A program being written: instructions, and jumps to labels resolved by [`Asm::finish`].
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: HashMap<&'static str, usize>,
    jumps: Vec<(usize, &'static str)>,
}

/// A jump to a label that was never placed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("eBPF program: no label {0:?}")]
pub struct UnknownLabel(pub &'static str);

impl Asm {
    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn { code, dst: dst.0, src: src.0, off, imm });
        self
    }

    /// `dst = src` (64-bit).
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(ALU64 | MOV | X, dst, src, 0, 0)
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(ALU64 | MOV | K, dst, R0, 0, imm)
    }

    /// `dst += imm` (64-bit).
    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(ALU64 | ADD | K, dst, R0, 0, imm)
    }

    /// `dst |= src` (64-bit).
    pub fn or(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(ALU64 | OR | X, dst, src, 0, 0)
    }

    /// `dst <<= imm` (64-bit).
    pub fn lsh_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.push(ALU64 | LSH | K, dst, R0, 0, imm)
    }

    /// `dst = (u32)dst % (u32)src` (a zero divisor leaves dst as it was).
    pub fn mod32(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.push(ALU | MOD | X, dst, src, 0, 0)
    }

    /// `dst = *(u32 *)(src + off)`.
    pub fn load32(&mut self, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.push(LDX | MEM | W, dst, src, off, 0)
    }

    /// `*(u32 *)(dst + off) = src`.
    pub fn store32(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.push(STX | MEM | W, dst, src, off, 0)
    }

    /// `*(u64 *)(dst + off) = src`.
    pub fn store64(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.push(STX | MEM | DW, dst, src, off, 0)
    }

    /// `dst = map` (the file descriptor, which the kernel turns into the map's address).
    pub fn load_map(&mut self, dst: Reg, map_fd: i32) -> &mut Self {
        self.insns.push(Insn { code: LD | DW | IMM, dst: dst.0, src: PSEUDO_MAP_FD, off: 0, imm: map_fd });
        self.insns.push(Insn { code: 0, dst: 0, src: 0, off: 0, imm: 0 });
        self
    }

    /// `call helper` (arguments in r1-r5, result in r0).
    pub fn call(&mut self, helper: i32) -> &mut Self {
        self.push(JMP | CALL, R0, R0, 0, helper)
    }

    /// `goto label`.
    pub fn jump(&mut self, label: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), label));
        self.push(JMP | JA, R0, R0, 0, 0)
    }

    /// `if dst == imm goto label`.
    pub fn jump_eq(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), label));
        self.push(JMP | JEQ | K, dst, R0, 0, imm)
    }

    /// `if dst != imm goto label`.
    pub fn jump_ne(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), label));
        self.push(JMP | JNE | K, dst, R0, 0, imm)
    }

    /// Name the next instruction.
    pub fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.insert(name, self.insns.len());
        self
    }

    /// `return r0`.
    pub fn exit(&mut self) -> &mut Self {
        self.push(JMP | EXIT, R0, R0, 0, 0)
    }

    /// The instructions, every jump pointed at its label.
    pub fn finish(mut self) -> Result<Vec<Insn>, UnknownLabel> {
        for (at, label) in std::mem::take(&mut self.jumps) {
            let target = *self.labels.get(label).ok_or(UnknownLabel(label))?;
            // Offsets count from the instruction after the jump.
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| UnknownLabel(label))?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_the_kernels() {
        // Byte for byte as `struct bpf_insn` (little-endian: dst in the low nibble, src high).
        let mut a = Asm::default();
        a.mov(R6, R1).load32(R2, R6, 36).store32(FP, -8, R2).mov_imm(R0, 1).call(GET_PRANDOM_U32).exit();
        let bytes: Vec<[u8; 8]> = a.finish().expect("assembles").into_iter().map(Insn::to_bytes).collect();
        assert_eq!(bytes[0], [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[1], [0x61, 0x62, 36, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[2], [0x63, 0x2a, 0xf8, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes[3], [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[4], [0x85, 0x00, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes[5], [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_map_load_takes_two_slots() {
        let mut a = Asm::default();
        a.load_map(R1, 5);
        let insns = a.finish().expect("assembles");
        assert_eq!(insns.len(), 2);
        assert_eq!(insns[0].to_bytes(), [0x18, 0x11, 0, 0, 5, 0, 0, 0]);
        assert_eq!(insns[1].to_bytes(), [0; 8]);
    }

    #[test]
    fn jumps_count_from_the_next_instruction() {
        let mut a = Asm::default();
        a.jump_eq(R0, 0, "out").mov_imm(R0, 2).jump("out").mov_imm(R0, 3).label("out").exit();
        let insns = a.finish().expect("assembles");
        assert_eq!(insns[0].off, 3);
        assert_eq!(insns[2].off, 1);
        // Backwards too.
        let mut b = Asm::default();
        b.label("top").mov_imm(R0, 1).jump_ne(R0, 0, "top");
        assert_eq!(b.finish().expect("assembles")[1].off, -2);
    }

    #[test]
    fn an_unplaced_label_is_an_error() {
        let mut a = Asm::default();
        a.jump("nowhere");
        assert_eq!(a.finish(), Err(UnknownLabel("nowhere")));
    }
}
