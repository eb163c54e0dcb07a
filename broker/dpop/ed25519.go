package dpop

import (
	"math/big"
)

// An Ed25519 public key of small order proves nothing: with the identity
// point, for one, any (R = [r]B, S = r) verifies for every message, and
// crypto/ed25519 does not refuse such keys (it follows RFC 8032, which does
// not ask it to). A proof with one would bind a token to a key anyone can
// sign for. So the verifier refuses the eight points of small order, and
// the non-canonical encodings (y ≥ p) that RFC 8032 §5.1.3 rejects.

// lowOrderY holds, little-endian, the y coordinates of the eight points of
// order dividing 8 on edwards25519: 1 (the identity), p−1 (order 2), 0
// (order 4) and ±y₈ (order 8), where doubling an order-8 point gives y = 0,
// i.e. x² = −y², which on −x² + y² = 1 + d·x²y² means d·y⁴ + 2y² − 1 = 0.
var lowOrderY = func() (ys [5][32]byte) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	mod := func(x *big.Int) *big.Int { return x.Mod(x, p) }
	// d = −121665/121666
	d := mod(new(big.Int).Mul(big.NewInt(-121665), new(big.Int).ModInverse(big.NewInt(121666), p)))
	// y² = (−1 ± √(1+d)) / d; exactly one sign gives a square.
	root := new(big.Int).ModSqrt(mod(new(big.Int).Add(d, big.NewInt(1))), p)
	dInv := new(big.Int).ModInverse(d, p)
	var y8 *big.Int
	for _, s := range []*big.Int{root, mod(new(big.Int).Neg(root))} {
		y2 := mod(new(big.Int).Mul(mod(new(big.Int).Sub(s, big.NewInt(1))), dInv))
		if y := new(big.Int).ModSqrt(y2, p); y != nil {
			y8 = y
			break
		}
	}
	for i, y := range []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(p, big.NewInt(1)), y8, new(big.Int).Sub(p, y8)} {
		y.FillBytes(ys[i][:])
		for l, r := 0, 31; l < r; l, r = l+1, r-1 { // to little-endian
			ys[i][l], ys[i][r] = ys[i][r], ys[i][l]
		}
	}
	return ys
}()

// ed25519KeyUsable reports whether the encoded public key is canonical
// (y < p) and not of small order.
func ed25519KeyUsable(key []byte) bool {
	if len(key) != 32 {
		return false
	}
	var y [32]byte
	copy(y[:], key)
	y[31] &= 0x7f // the top bit is the sign of x
	// p = 2^255 − 19 is 0xed, 0xff × 30, 0x7f little-endian: y ≥ p when
	// bytes 1..30 are all 0xff, byte 31 is 0x7f and byte 0 is at least 0xed.
	canonical := y[31] != 0x7f || y[0] < 0xed
	for i := 1; !canonical && i < 31; i++ {
		canonical = y[i] != 0xff
	}
	if !canonical {
		return false
	}
	for _, low := range lowOrderY {
		if y == low {
			return false
		}
	}
	return true
}
