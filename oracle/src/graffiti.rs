//! Graffiti values: the bytes every oracle passes and returns, chosen so that a shifted,
//! truncated or swapped byte shows at once.
//!
//! Byte `j` of argument `i` is `(i << 4) | j` (folded beyond 16); a result counts down from
//! `0xAF`. Each value is then made valid for its type ([`make_valid`]).

use backcall::Value;
use backcall_abi::{Abi, Layout, Scalar, Shape};

/// Graffiti seed of the result value (its bytes are then inverted in the low nibble, so they
/// count down from `0xAF`: see [`result_graffiti`]).
const RESULT_SEED: u32 = 0xA;

/// Byte `j` of the raw graffiti for seed `seed` (an argument index): `(seed << 4) | j`.
///
/// Beyond 16 bytes (or 16 arguments) the nibbles repeat, so the higher parts of `j` and `seed`
/// are folded in: a 16-byte shift inside a large struct still shows.
pub fn graffiti_byte(seed: u32, j: u32) -> u8 {
    let base = (seed << 4) | (j & 0xF);
    (base ^ (j >> 4).wrapping_mul(0x35) ^ (seed >> 4).wrapping_mul(0x0B)) as u8
}

/// The graffiti value of argument `index` with layout `layout` on `abi`: raw graffiti made
/// valid for the argument's type (see [`make_valid`]).
pub fn arg_graffiti(abi: Abi, index: usize, layout: &Layout) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..layout.size).map(|j| graffiti_byte(index as u32, j)).collect();
    make_valid(abi, index as u32, layout, &mut bytes);
    bytes
}

/// The graffiti value a handler returns for a result of layout `layout`: `0xAF, 0xAE, ...`.
pub fn result_graffiti(abi: Abi, layout: &Layout) -> Vec<u8> {
    let mut bytes: Vec<u8> =
        (0..layout.size).map(|j| graffiti_byte(RESULT_SEED, j) ^ 0xF).collect();
    make_valid(abi, RESULT_SEED, layout, &mut bytes);
    bytes
}

/// Adjusts raw graffiti so that every scalar inside is a valid value of its type (ARCHITECTURE.md §6):
///
/// * `float`/`double`/`long double`: the exponent's top bit (bit 6 of the most significant
///   byte) is cleared, so the value is never an infinity or a NaN (which x87 loads and stores
///   could quieten); x87's `long double` also gets its integer bit (bit 63) set.
/// * `_Bool`: 0 or 1 (alternating with the argument and member index).
/// * a scalar integer narrower than a register: the top bit is set for even seeds and cleared
///   for odd ones, so sign and zero extension give different registers.
pub fn make_valid(abi: Abi, seed: u32, layout: &Layout, bytes: &mut [u8]) {
    let leaves = layout.leaves();
    for leaf in &leaves {
        let msb = (leaf.offset + leaf.size - 1) as usize;
        if leaf.scalar.is_float() {
            bytes[msb] &= !0x40;
        }
        if leaf.scalar == Scalar::LongDouble {
            // x87's explicit integer bit: set, or the FPU refuses the value (an unnormal)
            bytes[(leaf.offset + 7) as usize] |= 0x80;
        }
    }
    for (k, leaf) in leaves.iter().enumerate() {
        if leaf.scalar == Scalar::Bool {
            bytes[leaf.offset as usize] = u8::from((seed as usize + k) & 1 == 0);
        }
    }
    if let Shape::Scalar(s) = layout.shape {
        let narrow = layout.size < abi.word_size();
        if narrow && !s.is_float() && !matches!(s, Scalar::Bool | Scalar::Pointer) {
            let msb = layout.size as usize - 1;
            if seed & 1 == 0 {
                bytes[msb] |= 0x80;
            } else {
                bytes[msb] &= !0x80;
            }
        }
    }
}

/// Which bytes of a value of `layout` belong to some scalar (`true`) and which are padding.
pub fn value_mask(layout: &Layout) -> Vec<bool> {
    let mut mask = vec![false; layout.size as usize];
    for leaf in layout.leaves() {
        mask[leaf.offset as usize..(leaf.offset + leaf.size) as usize].fill(true);
    }
    mask
}

/// The [`Value`] a dynamic handler returns for result bytes `bytes` of layout `layout`.
pub fn value_from_bytes(abi: Abi, layout: &Layout, bytes: &[u8]) -> Value {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    let raw = u64::from_le_bytes(word);
    match layout.shape {
        Shape::Void => Value::Void,
        Shape::Scalar(Scalar::Float) => Value::F32(f32::from_bits(raw as u32)),
        Shape::Scalar(Scalar::Double) => Value::F64(f64::from_bits(raw)),
        // (an `__int128`: its bytes, as the handler API takes them)
        Shape::Scalar(_) if bytes.len() > 8 => Value::Bytes(bytes.to_vec()),
        Shape::Scalar(s) if backcall_abi::is_signed(abi, s) => {
            let shift = 64 - 8 * n as u32;
            Value::Int(((raw << shift) as i64) >> shift)
        }
        Shape::Scalar(_) => Value::UInt(raw),
        Shape::Aggregate { .. } | Shape::Array { .. } => Value::Bytes(bytes.to_vec()),
    }
}
