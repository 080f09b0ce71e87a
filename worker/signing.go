package worker

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// SignatureHeader carries a worker's signature of an event: what every
// worker checks before an event may change its view (profiles, users,
// sessions), so that a publisher on <prefix>.events.> other than a worker
// changes nothing.
const SignatureHeader = "Tat-Signature"

// Labels of the keys derived from TAT_MASTER_KEY: one per use, so a
// signature made for one can never pass for another.
const (
	eventSigningLabel = "tat event signing v1"
	jwksSigningLabel  = "tat shared jwks signing v1"
	signatureVersion  = "v1="
)

// signer makes and checks HMAC-SHA256 signatures under a key derived (HKDF)
// from the fleet's master key, which only workers know.
type signer struct{ key []byte }

func newSigner(master []byte, label string) signer {
	key, err := hkdf.Key(sha256.New, master, nil, label, 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // not reached: 32 bytes of SHA-256 are always available
	}
	return signer{key: key}
}

// sign returns "v1=" and the base64url HMAC of parts, each prefixed with
// its length so that no two lists of parts sign the same bytes.
func (s signer) sign(parts ...[]byte) string {
	return signatureVersion + base64.RawURLEncoding.EncodeToString(s.mac(parts...))
}

// verify reports whether sig is sign(parts...), in constant time.
func (s signer) verify(sig string, parts ...[]byte) bool {
	enc, ok := strings.CutPrefix(sig, signatureVersion)
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(enc)
	return err == nil && hmac.Equal(got, s.mac(parts...))
}

func (s signer) mac(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, s.key)
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}
