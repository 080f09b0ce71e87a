package domain_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"math/big"
	"slices"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// The key rules verifySignature re-checks (keyFits: RSA size, EC curve) are reached only by
// a key whose Algs were filled in by hand: AlgsForKey gives a 1024-bit RSA
// key no algorithm and an EC key only its own curve's. Each token below is
// correctly signed for the key it is checked with, so the only rule left to
// refuse it is the one under test.

const noKeyVerifies = "the token's signature does not verify with any trusted key"

var rsaAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// digestFor hashes input with the SHA-2 function of a JWS algorithm.
func digestFor(alg string, input []byte) (crypto.Hash, []byte) {
	switch alg[2:] {
	case "384":
		d := sha512.Sum384(input)
		return crypto.SHA384, d[:]
	case "512":
		d := sha512.Sum512(input)
		return crypto.SHA512, d[:]
	}
	d := sha256.Sum256(input)
	return crypto.SHA256, d[:]
}

// signedParts returns a compact token's signing input and signature.
func signedParts(t *testing.T, raw string) ([]byte, []byte) {
	t.Helper()
	seg := segments(raw)
	return []byte(seg[0] + "." + seg[1]), mustB64(t, seg[2])
}

func TestVerifyTokenRefusesShortRSAKeyWithValidSignature(t *testing.T) {
	t.Parallel()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if algs := domain.AlgsForKey(&weak.PublicKey); algs != nil {
		t.Fatalf("AlgsForKey(1024-bit RSA) = %v, want none", algs)
	}
	ks := newKeyset(t)
	strong := ks.rsa.priv.(*rsa.PrivateKey)
	for _, alg := range []string{"RS256", "PS256", "RS512", "PS384"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name    string
				priv    *rsa.PrivateKey
				refused bool
			}{
				{name: "1024-bit key", priv: weak, refused: true},
				// The same hand-filled key entry with a 2048-bit key verifies:
				// nothing but the size refuses the 1024-bit one.
				{name: "2048-bit key", priv: strong},
			} {
				key := domain.PublicKey{KID: "hand-filled-rsa", Algs: rsaAlgs, Key: &tc.priv.PublicKey}
				raw := build(t, signer{alg: alg, priv: tc.priv, pub: key}, tok{})
				input, sig := signedParts(t, raw)
				h, digest := digestFor(alg, input)
				var err error
				if alg[0] == 'P' {
					err = rsa.VerifyPSS(&tc.priv.PublicKey, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
				} else {
					err = rsa.VerifyPKCS1v15(&tc.priv.PublicKey, h, digest, sig)
				}
				if err != nil {
					t.Fatalf("%s: the test token's signature is not valid: %v", tc.name, err)
				}
				vt, err := domain.VerifyToken(raw, testPolicy(), []domain.PublicKey{key}, testNow)
				if !tc.refused {
					if err != nil {
						t.Fatalf("%s: VerifyToken: %v", tc.name, err)
					}
					continue
				}
				if vt != nil || !errors.Is(err, domain.ErrInvalidToken) {
					t.Fatalf("%s: VerifyToken = %v, %v; want invalid_trusted_auth_token", tc.name, vt, err)
				}
				if msg := domain.AsError(err).Message; msg != noKeyVerifies {
					t.Errorf("%s: message = %q, want %q", tc.name, msg, noKeyVerifies)
				}
			}
		})
	}
}

func TestVerifyTokenRefusesECKeyOfAnotherCurve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		alg   string
		curve elliptic.Curve
	}{
		{"ES256", elliptic.P384()},
		{"ES256", elliptic.P521()},
		{"ES384", elliptic.P256()},
		{"ES384", elliptic.P521()},
		{"ES512", elliptic.P256()},
		{"ES512", elliptic.P384()},
	} {
		t.Run(tc.alg+" with a "+tc.curve.Params().Name+" key", func(t *testing.T) {
			t.Parallel()
			half := map[string]int{"ES256": 32, "ES384": 48, "ES512": 66}[tc.alg]
			var pub *ecdsa.PublicKey
			raw := build(t, signer{alg: tc.alg, pub: domain.PublicKey{KID: "hand-filled-ec"}}, tok{
				rawSig: func(input []byte) []byte {
					var sig []byte
					pub, sig = ecSignatureOnCurve(t, tc.curve, tc.alg, input, half)
					return sig
				},
			})
			if slices.Contains(domain.AlgsForKey(pub), tc.alg) {
				t.Fatalf("AlgsForKey(%s key) allows %s", tc.curve.Params().Name, tc.alg)
			}
			// Plain ECDSA over the alg's hash accepts the signature with
			// this key: only the curve check can refuse it.
			input, sig := signedParts(t, raw)
			_, digest := digestFor(tc.alg, input)
			if len(sig) != 2*half || !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:])) {
				t.Fatalf("the test token's signature is not a valid %d-byte ECDSA signature", 2*half)
			}
			key := domain.PublicKey{KID: "hand-filled-ec", Algs: []string{tc.alg}, Key: pub}
			vt, err := domain.VerifyToken(raw, testPolicy(), []domain.PublicKey{key}, testNow)
			if vt != nil || !errors.Is(err, domain.ErrInvalidToken) {
				t.Fatalf("VerifyToken = %v, %v; want invalid_trusted_auth_token", vt, err)
			}
			if msg := domain.AsError(err).Message; msg != noKeyVerifies {
				t.Errorf("message = %q, want %q", msg, noKeyVerifies)
			}
		})
	}
}

// ecSignatureOnCurve returns a key on curve c and a raw r||s signature
// (half bytes each) of input hashed as alg says, which ecdsa.Verify accepts
// with that key.
//
// When c's order fits in half bytes, that is a real key signing as usual
// (ecdsa truncates a longer digest). When it does not (ES256 with a P-384
// key), a real signature's r and s would not fit, so r and s are picked
// below 2^(8*half) first and the key is solved from them: with R the curve
// point whose x is r, Q = r⁻¹·(s·R − e·G) makes u1·G + u2·Q = R, which is
// what verification checks. Nobody knows that key's private half; it is a
// valid point of c all the same.
func ecSignatureOnCurve(t *testing.T, c elliptic.Curve, alg string, input []byte, half int) (*ecdsa.PublicKey, []byte) {
	t.Helper()
	_, digest := digestFor(alg, input)
	out := make([]byte, 2*half)
	params := c.Params()
	if (params.N.BitLen()+7)/8 <= half {
		priv, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			t.Fatal(err)
		}
		r.FillBytes(out[:half])
		s.FillBytes(out[half:])
		return &priv.PublicKey, out
	}
	if len(digest)*8 > params.N.BitLen() {
		t.Fatalf("the %s digest is longer than the %s order", alg, params.Name)
	}
	n, p := params.N, params.P
	limit := new(big.Int).Lsh(big.NewInt(1), uint(8*half))
	random := func() *big.Int {
		for {
			v, err := rand.Int(rand.Reader, limit)
			if err != nil {
				t.Fatal(err)
			}
			if v.Sign() > 0 {
				return v
			}
		}
	}
	// R: a point whose x is a random r below the limit (about half of all
	// x have one). The limit is below n and p, so x mod n is r itself.
	var r, ry *big.Int
	for ry == nil {
		r = random()
		rhs := new(big.Int).Exp(r, big.NewInt(3), p)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), r))
		rhs.Add(rhs, params.B)
		rhs.Mod(rhs, p)
		ry = new(big.Int).ModSqrt(rhs, p)
	}
	s := random()
	e := new(big.Int).SetBytes(digest) // shorter than the order: used whole
	rInv := new(big.Int).ModInverse(r, n)
	k1 := new(big.Int).Mul(s, rInv)
	k1.Mod(k1, n)
	k2 := new(big.Int).Mul(e, rInv)
	k2.Neg(k2).Mod(k2, n)
	// The big.Int point arithmetic of elliptic.Curve is deprecated for real
	// cryptography; here it only builds a test key.
	ax, ay := c.ScalarMult(r, ry, k1.Bytes())
	bx, by := c.ScalarBaseMult(k2.Bytes())
	qx, qy := c.Add(ax, ay, bx, by)
	if !c.IsOnCurve(qx, qy) {
		t.Fatalf("the solved key is not on %s", params.Name)
	}
	r.FillBytes(out[:half])
	s.FillBytes(out[half:])
	size := (params.BitSize + 7) / 8
	point := make([]byte, 1+2*size)
	point[0] = 4
	qx.FillBytes(point[1 : 1+size])
	qy.FillBytes(point[1+size:])
	pub, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		t.Fatalf("the solved key does not parse: %v", err)
	}
	return pub, out
}
