package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

// keygen runs "keygen" for one key type in a fresh directory and returns the
// base name of the files.
func keygen(t *testing.T, extra ...string) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), "dev")
	code, stdout, stderr := runCLI(t, append([]string{"keygen", "-json", "-out", base}, extra...)...)
	if code != exitOK {
		t.Fatalf("keygen %v: exit %d\n%s", extra, code, stderr)
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("keygen output is not JSON: %v\n%s", err, stdout)
	}
	if out["private_key_file"] != base+".key.pem" || out["public_key_file"] != base+".pub.pem" {
		t.Errorf("keygen output names %q and %q", out["private_key_file"], out["public_key_file"])
	}
	return base
}

func TestKeygen(t *testing.T) {
	cases := []struct {
		name string
		args []string
		alg  string
	}{
		{"default is EC P-256", nil, "ES256"},
		{"EC P-384", []string{"-type", "ec", "-curve", "P-384"}, "ES384"},
		{"EC P-521", []string{"-type", "ec", "-curve", "P-521"}, "ES512"},
		{"RSA", []string{"-type", "rsa"}, "RS256"},
		{"Ed25519", []string{"-type", "ed25519"}, "EdDSA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := keygen(t, tc.args...)

			keyInfo, err := os.Stat(base + ".key.pem")
			if err != nil {
				t.Fatal(err)
			}
			if mode := keyInfo.Mode().Perm(); mode != 0o600 {
				t.Errorf("private key mode %v, want 0600", mode)
			}
			pubInfo, err := os.Stat(base + ".pub.pem")
			if err != nil {
				t.Fatal(err)
			}
			if mode := pubInfo.Mode().Perm(); mode&0o400 == 0 || mode&0o022 != 0 {
				t.Errorf("public key mode %v, want 0644 (less the umask)", mode)
			}

			pubPEM, err := os.ReadFile(base + ".pub.pem")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := domain.ParsePEMPublicKey(string(pubPEM))
			if err != nil {
				t.Fatalf("the public PEM does not parse as a profile key: %v", err)
			}
			if !pub.Allows(tc.alg) {
				t.Errorf("key admits %v, want %s", pub.Algs, tc.alg)
			}
			if !strings.HasPrefix(string(pubPEM), "-----BEGIN PUBLIC KEY-----") {
				t.Errorf("public key is not PKIX PEM:\n%s", pubPEM)
			}

			privPEM, err := os.ReadFile(base + ".key.pem")
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(privPEM)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("private key is not a PKCS#8 PEM block")
			}
			if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
				t.Fatalf("private key is not PKCS#8: %v", err)
			}
			key, err := loadPrivateKey(base + ".key.pem")
			if err != nil {
				t.Fatal(err)
			}
			if got := defaultAlg(key.Public()); got != tc.alg {
				t.Errorf("defaultAlg = %s, want %s", got, tc.alg)
			}
		})
	}
}

func TestKeygenKidIsTheProfileKeyID(t *testing.T) {
	base := filepath.Join(t.TempDir(), "k")
	code, stdout, stderr := runCLI(t, "keygen", "-out", base, "-type", "ed25519", "--json")
	if code != exitOK {
		t.Fatal(stderr)
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	pub, err := domain.ParsePEMPublicKey(out["public_key_pem"])
	if err != nil {
		t.Fatal(err)
	}
	if out["kid"] != pub.KID {
		t.Errorf("kid %q, profile key KID %q", out["kid"], pub.KID)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	base := keygen(t)
	before, err := os.ReadFile(base + ".key.pem")
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "keygen", "-out", base)
	if code != exitFailure || !strings.Contains(stderr, "-force") {
		t.Fatalf("second keygen: exit %d, stderr %q", code, stderr)
	}
	after, _ := os.ReadFile(base + ".key.pem")
	if string(before) != string(after) {
		t.Fatal("the existing private key was changed")
	}
	if err := os.Chmod(base+".key.pem", 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "keygen", "-out", base, "-force"); code != exitOK {
		t.Fatalf("keygen -force: exit %d, %s", code, stderr)
	}
	after, _ = os.ReadFile(base + ".key.pem")
	if string(before) == string(after) {
		t.Fatal("-force did not write a new key")
	}
	info, _ := os.Stat(base + ".key.pem")
	if info.Mode().Perm() != 0o600 {
		t.Errorf("-force left mode %v, want 0600", info.Mode().Perm())
	}
}

func TestLoadPrivateKeyFormats(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, typ string
		der       []byte
		ok        bool
	}{
		{"SEC 1 EC", "EC PRIVATE KEY", sec1, true},
		{"PKCS#1 RSA", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk), true},
		{"public key", "PUBLIC KEY", pub, false},
		{"encrypted", "ENCRYPTED PRIVATE KEY", []byte{1}, false},
		{"RSA too small", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small), false},
		{"garbage", "PRIVATE KEY", []byte("nope"), false},
	}
	for _, tc := range cases {
		name := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: tc.typ, Bytes: tc.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadPrivateKey(name)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, err := loadPrivateKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}
