package domain

import (
	"strconv"
	"strings"
)

// supportedAlgs lists every JWS algorithm a trusted token may use. HMAC and
// "none" are absent on purpose: a profile holds public keys only.
var supportedAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// SupportedAlg reports whether alg is one of the JWS algorithms a trusted
// token may use: RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA.
func SupportedAlg(alg string) bool { return supportedAlgs[alg] }

// TokenHeader is the part of a JOSE header the verifier uses. The header
// members jwk, jku, x5u, x5c (and any other key hint) are ignored: keys come
// from the profile only.
type TokenHeader struct {
	// Alg is a supported algorithm (see SupportedAlg) once PrecheckToken
	// has accepted the token.
	Alg string
	// Kid is the key id, "" when absent.
	Kid string
	// Typ is the media type, "" when absent; it is not checked.
	Typ string
}

// ParsedToken is a compact JWS that passed PrecheckToken: well formed, with
// an acceptable header, but NOT verified. Nothing in it may be trusted
// before (*ParsedToken).Verify succeeds.
type ParsedToken struct {
	// Header is the unverified JOSE header.
	Header TokenHeader

	// alg and kid are what Verify uses: a caller editing Header cannot
	// change how the token is verified.
	alg, kid     string
	size         int
	signingInput []byte
	signature    []byte
	claims       map[string]any
}

// UnverifiedIssuer returns the token's iss claim, or "" when it is absent or
// not a string. It is not verified: use it only to pick the profile (and
// refuse unknown issuers) before any key is fetched.
func (p *ParsedToken) UnverifiedIssuer() string {
	if p == nil {
		return ""
	}
	iss, _ := p.claims["iss"].(string)
	return iss
}

// SigningInput returns a copy of the JWS signing input: the first two
// segments of the token and the dot between them, as sent.
func (p *ParsedToken) SigningInput() []byte { return append([]byte(nil), p.signingInput...) }

// Signature returns a copy of the decoded signature bytes.
func (p *ParsedToken) Signature() []byte { return append([]byte(nil), p.signature...) }

// PrecheckToken runs the cheap, unverified checks of a trusted token, so
// that a caller can refuse junk (and unknown issuers) before the token may
// cause a JWKS fetch. maxBytes <= 0 means DefaultMaxTokenBytes.
//
// In order, each refusal an ErrInvalidToken with its own message: the size
// cap (before any parsing); compact serialization only (JSON serialization
// and 5-part JWE refused, exactly 3 parts); only base64url characters (no
// padding, no "+" or "/", no whitespace) decoded strictly; a header that is
// one strict JSON object (valid UTF-8, no duplicate keys, no trailing data);
// a supported alg ("none" in any case and HMAC refused); no crit (no
// critical extension is supported, and RFC 7515 section 4.1.11 forbids an
// empty list); no b64; no cty of JWT (nested tokens); kid, typ and cty
// strings when present; the key hints jwk, jku, x5c, x5t, x5t#S256 and
// x5u well formed as jwx reads them (a valid JWK, X.509 certificates,
// strings), though ignored and never fetched; a payload that is one strict
// JSON object; a non-empty signature.
func PrecheckToken(raw string, maxBytes int) (*ParsedToken, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTokenBytes
	}
	if len(raw) > maxBytes {
		return nil, ErrInvalidToken.With("the token is larger than %d bytes", maxBytes)
	}
	if raw == "" {
		return nil, ErrInvalidToken.With("the token is empty")
	}
	if strings.HasPrefix(strings.TrimLeft(raw, " \t\r\n"), "{") {
		return nil, ErrInvalidToken.With("the JWS JSON serialization is not accepted; send the compact form")
	}
	switch dots := strings.Count(raw, "."); dots {
	case 2:
	case 4:
		return nil, ErrInvalidToken.With("encrypted tokens (JWE) are not accepted; send a signed compact JWS")
	default:
		return nil, ErrInvalidToken.With("the token is not a compact JWS: it has %d parts, 3 are required", dots+1)
	}
	headerSeg, rest, _ := strings.Cut(raw, ".")
	payloadSeg, sigSeg, _ := strings.Cut(rest, ".")

	headerJSON, err := decodeSegment(headerSeg, "header")
	if err != nil {
		return nil, err
	}
	payloadJSON, err := decodeSegment(payloadSeg, "payload")
	if err != nil {
		return nil, err
	}
	sig, err := decodeSegment(sigSeg, "signature")
	if err != nil {
		return nil, err
	}

	hdrMap, err := decodeStrictObject(headerJSON)
	if err != nil {
		return nil, ErrInvalidToken.Wrap(err, "the token header is not a strict JSON object: %s", jsonProblem(err))
	}
	header, err := checkHeader(hdrMap)
	if err != nil {
		return nil, err
	}
	if !keyHintsReadable(hdrMap, headerJSON) {
		return nil, ErrInvalidToken.With("the token header has a malformed key hint (jwk, jku, x5c, x5t, x5t#S256 or x5u): they are ignored, but must be well formed")
	}
	claims, err := decodeStrictObject(payloadJSON)
	if err != nil {
		return nil, ErrInvalidToken.Wrap(err, "the token payload is not a strict JSON object: %s", jsonProblem(err))
	}
	if len(sig) == 0 {
		return nil, ErrInvalidToken.With("the token has no signature")
	}
	return &ParsedToken{
		Header:       header,
		alg:          header.Alg,
		kid:          header.Kid,
		size:         len(raw),
		signingInput: []byte(raw[:len(headerSeg)+1+len(payloadSeg)]),
		signature:    sig,
		claims:       claims,
	}, nil
}

// decodeSegment decodes one segment of a compact token with
// DecodeBase64URL, naming the segment and the first problem in the error.
func decodeSegment(seg, what string) ([]byte, error) {
	b, err := DecodeBase64URL(seg)
	if err != nil {
		return nil, ErrInvalidToken.With("the token %s %s", what, err)
	}
	return b, nil
}

// checkHeader applies the header rules of PrecheckToken in order.
func checkHeader(h map[string]any) (TokenHeader, error) {
	var out TokenHeader
	rawAlg, ok := h["alg"]
	if !ok {
		return out, ErrInvalidToken.With("the token header has no alg")
	}
	alg, ok := rawAlg.(string)
	if !ok {
		return out, ErrInvalidToken.With("the token header's alg is not a string")
	}
	switch {
	case strings.EqualFold(strings.TrimSpace(alg), "none"):
		return out, ErrInvalidToken.With("unsigned tokens (alg none) are not accepted")
	case len(alg) >= 2 && strings.EqualFold(alg[:2], "HS"):
		return out, ErrInvalidToken.With("HMAC algorithms (%s) are not accepted; the token must be signed with a public-key algorithm", quoteShort(alg))
	case !supportedAlgs[alg]:
		return out, ErrInvalidToken.With("the algorithm %s is not supported", quoteShort(alg))
	}
	out.Alg = alg

	if crit, ok := h["crit"]; ok {
		if list, isList := crit.([]any); isList && len(list) == 0 {
			return out, ErrInvalidToken.With("the token header has an empty crit list, which RFC 7515 forbids")
		}
		return out, ErrInvalidToken.With("the token header has critical extensions (crit), which are not supported")
	}
	if _, ok := h["b64"]; ok {
		return out, ErrInvalidToken.With("the token header has b64 (unencoded payload), which is not supported")
	}
	if cty, ok := h["cty"]; ok {
		s, isString := cty.(string)
		if !isString {
			return out, ErrInvalidToken.With("the token header's cty is not a string")
		}
		if strings.EqualFold(s, "JWT") {
			return out, ErrInvalidToken.With("nested tokens (cty JWT) are not accepted")
		}
	}
	if kid, ok := h["kid"]; ok {
		s, isString := kid.(string)
		if !isString {
			return out, ErrInvalidToken.With("the token header's kid is not a string")
		}
		out.Kid = s
	}
	if typ, ok := h["typ"]; ok {
		s, isString := typ.(string)
		if !isString {
			return out, ErrInvalidToken.With("the token header's typ is not a string")
		}
		out.Typ = s
	}
	return out, nil
}

// quoteShort quotes attacker-controlled text for an error message, cut to a
// few characters so that a message never carries a large part of a token.
func quoteShort(s string) string {
	const limit = 32
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
