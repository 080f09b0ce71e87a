package domain_test

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePEMPublicKeyAccepts(t *testing.T) {
	t.Parallel()
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) crypto.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k.Public()
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaAlgs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

	for _, tc := range []struct {
		name     string
		pub      crypto.PublicKey
		text     func(t *testing.T, pub crypto.PublicKey) string
		wantAlgs []string
	}{
		{name: "RSA 2048 PKIX", pub: rsa2048.Public(), wantAlgs: rsaAlgs},
		{name: "RSA 3072 PKIX", pub: rsa3072.Public(), wantAlgs: rsaAlgs},
		{
			name: "RSA 2048 PKCS1", pub: rsa2048.Public(), wantAlgs: rsaAlgs,
			text: func(t *testing.T, pub crypto.PublicKey) string {
				return pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub.(*rsa.PublicKey)))
			},
		},
		{name: "EC P-256", pub: ec(elliptic.P256()), wantAlgs: []string{"ES256"}},
		{name: "EC P-384", pub: ec(elliptic.P384()), wantAlgs: []string{"ES384"}},
		{name: "EC P-521", pub: ec(elliptic.P521()), wantAlgs: []string{"ES512"}},
		{name: "Ed25519", pub: edPub, wantAlgs: []string{"EdDSA"}},
		{
			name: "surrounding whitespace and CRLF", pub: edPub, wantAlgs: []string{"EdDSA"},
			text: func(t *testing.T, pub crypto.PublicKey) string {
				return "\r\n  " + strings.ReplaceAll(pemOf(t, pub), "\n", "\r\n") + "\n\n"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := pemOf(t, tc.pub)
			if tc.text != nil {
				text = tc.text(t, tc.pub)
			}
			k, err := domain.ParsePEMPublicKey(text)
			if err != nil {
				t.Fatalf("ParsePEMPublicKey: %v", err)
			}
			if !slices.Equal(k.Algs, tc.wantAlgs) {
				t.Errorf("Algs = %v, want %v", k.Algs, tc.wantAlgs)
			}
			want, err := domain.JWKThumbprint(tc.pub)
			if err != nil {
				t.Fatal(err)
			}
			if k.KID != want || len(k.KID) != 43 {
				t.Errorf("KID = %q, want the 43-character thumbprint %q", k.KID, want)
			}
			if eq, ok := k.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tc.pub) {
				t.Errorf("Key is not the key of the PEM")
			}
		})
	}
}

func TestParsePEMPublicKeyRefuses(t *testing.T) {
	t.Parallel()
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p256.Public(), p256)
	if err != nil {
		t.Fatal(err)
	}
	good := pemOf(t, rsa2048.Public())
	// A modulus too big to trust, built by hand: generating such a key
	// would take minutes, and parsing does not need the private half.
	huge := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), domain.MaxRSABits+8), E: 65537}
	huge.N.Add(huge.N, big.NewInt(1))
	weakE := &rsa.PublicKey{N: rsa2048.N, E: 1}

	for _, tc := range []struct {
		name, text, wantMsg string
	}{
		{"empty", "", "empty"},
		{"only whitespace", " \n\t", "empty"},
		{"garbage", "this is not a key", "must start with"},
		{"garbage in PEM armour", "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n", "not a supported PKIX"},
		{"broken base64 body", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "no valid PEM block"},
		{"missing END line", strings.SplitAfter(good, "\n")[0] + strings.SplitAfter(good, "\n")[1], "no valid PEM block"},
		{"RSA 1024", pemOf(t, rsa1024.Public()), "1024 bits"},
		{"RSA 1024 PKCS1", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa1024.PublicKey)), "1024 bits"},
		{"RSA above the maximum", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(huge)), "at most"},
		{"RSA exponent 1", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(weakE)), "exponent"},
		{"PKCS8 private key", pemBlock("PRIVATE KEY", pkcs8), "private key"},
		{"RSA private key", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), "private key"},
		{"EC private key", pemBlock("EC PRIVATE KEY", ecPriv), "private key"},
		{"certificate", pemBlock("CERTIFICATE", cert), "certificates are not accepted"},
		{"unknown block type", pemBlock("SSH2 PUBLIC KEY", []byte("x")), "not supported"},
		{"a block type of 32 characters, quoted whole", pemBlock("OPENSSH PUBLIC KEY FORMAT VERSIO", []byte("x")), `type "OPENSSH PUBLIC KEY FORMAT VERSIO" is not`},
		{"a block type over 32 characters, cut", pemBlock("OPENSSH PUBLIC KEY FORMAT VERSION", []byte("x")), `type "OPENSSH PUBLIC KEY FORMAT VERSIO"... is not`},
		{"PKCS1 bytes in a PUBLIC KEY block", pemBlock("PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey)), "not a supported PKIX"},
		{"PKIX bytes in an RSA PUBLIC KEY block", strings.Replace(strings.Replace(good, "PUBLIC KEY", "RSA PUBLIC KEY", 1), "END PUBLIC KEY", "END RSA PUBLIC KEY", 1), "PKCS #1"},
		{"two blocks", good + pemOf(t, p256.Public()), "more than one block"},
		{"a broken block before a good one", "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n" + good, "more than one block"},
		{"trailing junk", good + "junk\n", "after the END line"},
		{"leading junk", "junk\n" + good, "must start with"},
		{"PEM headers", pemWithHeaders(rsa2048.Public()), "headers"},
		{"P-224", pemOf(t, p224.Public()), "P-224"},
		{"X25519", pemOf(t, x25519.PublicKey()), "not accepted"},
		{"oversize", strings.Repeat(" ", domain.MaxPEMBytes) + good, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := domain.ParsePEMPublicKey(tc.text)
			if !errors.Is(err, domain.ErrProfileInvalid) {
				t.Fatalf("ParsePEMPublicKey = %+v, %v; want ErrProfileInvalid", k, err)
			}
			var de *domain.Error
			if !errors.As(err, &de) || !strings.Contains(de.Message, tc.wantMsg) {
				t.Errorf("message = %q, want it to mention %q", de.Message, tc.wantMsg)
			}
		})
	}
}

func pemWithHeaders(pub crypto.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Comment": "x"}, Bytes: der}))
}

// TestJWKThumbprintKnownAnswers checks the RFC 7638 section 3.1 example and
// the RFC 8037 appendix A.3 example, the first through a PEM.
func TestJWKThumbprintKnownAnswers(t *testing.T) {
	t.Parallel()
	n := mustB64(t, "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	rfc7638 := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	k, err := domain.ParsePEMPublicKey(pemOf(t, rfc7638))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; k.KID != want {
		t.Errorf("RFC 7638 thumbprint = %s, want %s", k.KID, want)
	}
	pkcs1, err := domain.ParsePEMPublicKey(pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rfc7638)))
	if err != nil {
		t.Fatal(err)
	}
	if pkcs1.KID != k.KID {
		t.Errorf("PKCS1 and PKIX forms of one key have different KIDs: %s, %s", pkcs1.KID, k.KID)
	}

	ed := ed25519.PublicKey(mustB64(t, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
	got, err := domain.JWKThumbprint(ed)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("RFC 8037 thumbprint = %s, want %s", got, want)
	}

	if _, err := domain.JWKThumbprint("not a key"); err == nil {
		t.Errorf("JWKThumbprint accepted a string")
	}
}

// TestJWKThumbprintECPadsCoordinates: a coordinate with leading zero bytes
// must still be encoded at full field size, so the KID does not depend on
// the key's value. Keys are drawn until one has such a coordinate.
func TestJWKThumbprintECPadsCoordinates(t *testing.T) {
	t.Parallel()
	for i := 0; i < 2000; i++ {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		point, err := k.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		x, y := point[1:33], point[33:]
		if x[0] != 0 && y[0] != 0 {
			continue
		}
		canonical := `{"crv":"P-256","kty":"EC","x":"` + b64(x) + `","y":"` + b64(y) + `"}`
		got, err := domain.JWKThumbprint(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256B64(canonical); got != want {
			t.Fatalf("thumbprint = %s, want %s (of %s)", got, want, canonical)
		}
		return
	}
	t.Skip("no key with a leading zero coordinate byte drawn")
}

func sha256B64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return b64(sum[:])
}

// TestJWKThumbprintRefusesIncompleteKeys: a key with a missing, zero or
// negative part, an EC key off the supported curves and an Ed25519 key of
// the wrong size get no thumbprint (a thumbprint is a key id: it must name
// a usable key).
func TestJWKThumbprintRefusesIncompleteKeys(t *testing.T) {
	t.Parallel()
	n := new(big.Int).Lsh(big.NewInt(1), 2047)
	n.Add(n, big.NewInt(1))
	for name, key := range map[string]any{
		"RSA nil":           (*rsa.PublicKey)(nil),
		"RSA without N":     &rsa.PublicKey{E: 65537},
		"RSA with N zero":   &rsa.PublicKey{N: big.NewInt(0), E: 65537},
		"RSA with N < 0":    &rsa.PublicKey{N: new(big.Int).Neg(n), E: 65537},
		"RSA with E zero":   &rsa.PublicKey{N: n, E: 0},
		"RSA with E < 0":    &rsa.PublicKey{N: n, E: -3},
		"EC nil":            (*ecdsa.PublicKey)(nil),
		"Ed25519 too short": ed25519.PublicKey(make([]byte, ed25519.PublicKeySize-1)),
		"Ed25519 too long":  ed25519.PublicKey(make([]byte, ed25519.PublicKeySize+1)),
	} {
		if got, err := domain.JWKThumbprint(key); err == nil {
			t.Errorf("%s: thumbprint %s, want an error", name, got)
		}
	}
	// The same modulus with a usable exponent does get one.
	if _, err := domain.JWKThumbprint(&rsa.PublicKey{N: n, E: 65537}); err != nil {
		t.Errorf("a complete RSA key: %v", err)
	}
}

// TestParsePEMPublicKeySizeLimit: PEM text of exactly MaxPEMBytes is read
// (white space around the block included); one byte more is refused.
func TestParsePEMPublicKeySizeLimit(t *testing.T) {
	t.Parallel()
	good := edPEM(t, 7)
	padded := good + strings.Repeat("\n", domain.MaxPEMBytes-len(good))
	if _, err := domain.ParsePEMPublicKey(padded); err != nil {
		t.Errorf("%d bytes: %v", len(padded), err)
	}
	if _, err := domain.ParsePEMPublicKey(padded + "\n"); !errors.Is(err, domain.ErrProfileInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("%d bytes: %v, want larger than", len(padded)+1, err)
	}
}

// TestParsePEMPublicKeyRSABounds: an RSA key of exactly MaxRSABits bits and
// one with the smallest valid exponent (3) are trusted. (The moduli are
// not real RSA keys: only their size and exponent are read.)
func TestParsePEMPublicKeyRSABounds(t *testing.T) {
	t.Parallel()
	modulus := func(bits int) *big.Int { // odd, of exactly bits bits
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return n.Add(n, big.NewInt(1))
	}
	for name, pub := range map[string]*rsa.PublicKey{
		"MaxRSABits bits": {N: modulus(domain.MaxRSABits), E: 65537},
		"MinRSABits bits": {N: modulus(domain.MinRSABits), E: 65537},
		"exponent 3":      {N: modulus(domain.MinRSABits), E: 3},
	} {
		k, err := domain.ParsePEMPublicKey(pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !k.Allows("RS256") || !k.Allows("PS512") {
			t.Errorf("%s: algs %v", name, k.Algs)
		}
	}
	for name, pub := range map[string]*rsa.PublicKey{
		"MaxRSABits+1 bits": {N: modulus(domain.MaxRSABits + 1), E: 65537},
		"MinRSABits-1 bits": {N: modulus(domain.MinRSABits - 1), E: 65537},
		"exponent 2":        {N: modulus(domain.MinRSABits), E: 2},
		"even exponent":     {N: modulus(domain.MinRSABits), E: 65536},
	} {
		_, err := domain.ParsePEMPublicKey(pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pub)))
		want := "bits"
		if pub.E != 65537 {
			want = "exponent"
		}
		if !errors.Is(err, domain.ErrProfileInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want trusted_token_profile_invalid_request naming the %s", name, err, want)
		}
	}
}
