package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/tat-worker/attest/domain"
)

// Commands of sections 3 to 5 of the contract: each is published to its
// JetStream subject and its one reply awaited (see publishAndWait).

// adminKind is "profile" or "user": the key of the object in a command,
// and the name of its id field with "_id".
type adminKind string

const (
	kindProfile adminKind = "profile"
	kindUser    adminKind = "user"
)

// subject is where commands of this kind go: <prefix>.profiles.commands or
// <prefix>.users.commands.
func (k adminKind) subject(g globals) string { return g.subject(string(k)+"s", "commands") }

func cmdProfileApply(c *cli, cmd *command, args []string) error {
	return applyAdmin(c, cmd, kindProfile, args)
}

func cmdProfileDelete(c *cli, cmd *command, args []string) error {
	return deleteAdmin(c, cmd, kindProfile, args)
}

func cmdUserApply(c *cli, cmd *command, args []string) error {
	return applyAdmin(c, cmd, kindUser, args)
}

func cmdUserDelete(c *cli, cmd *command, args []string) error {
	return deleteAdmin(c, cmd, kindUser, args)
}

// versionFlags are the flags every admin command takes.
type versionFlags struct {
	fs              *flag.FlagSet
	changeID        *string
	expectedVersion *int64
}

func addVersionFlags(fs *flag.FlagSet, defaultID string) versionFlags {
	return versionFlags{
		fs:              fs,
		changeID:        fs.String("change-id", "", "the command's change_id, also its Nats-Msg-Id (default: "+defaultID+")"),
		expectedVersion: fs.Int64("expected-version", 0, "send expected_version `N`: applied only if the stored version is N (0: must not exist yet)"),
	}
}

// expected returns the -expected-version value when it was given.
func (v versionFlags) expected() *int64 {
	if isSet(v.fs, "expected-version") {
		return v.expectedVersion
	}
	return nil
}

func applyAdmin(c *cli, cmd *command, kind adminKind, args []string) error {
	fs := c.flags(cmd)
	file := fs.String("f", "", "JSON `FILE` (- for stdin): a "+string(kind)+" object, or a whole command with \"op\" (required)")
	vf := addVersionFlags(fs, "the file's, else a random UUID")
	var pems stringList
	if kind == "profile" {
		fs.Var(&pems, "pem", "add the public key in PEM `FILE` to the profile's public_keys (repeatable)")
	}
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "f"); err != nil {
		return err
	}
	data, err := readInput(c.stdin, *file)
	if err != nil {
		return err
	}
	if data, err = addPEMs(data, pems); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	body, id, err := wrapCommand(kind, data, *vf.changeID, vf.expected())
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	return c.publishAndWait(kind.subject(c.g), id, body)
}

func deleteAdmin(c *cli, cmd *command, kind adminKind, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the "+string(kind)+"_id to delete (required)")
	vf := addVersionFlags(fs, "a random UUID")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "id"); err != nil {
		return err
	}
	changeID := *vf.changeID
	if changeID == "" {
		changeID = uuid.NewString()
	}
	if !domain.ValidCommandID(changeID) {
		return usageErrorf("-change-id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	cmdObj := map[string]any{"change_id": changeID, "op": domain.OpDelete, string(kind) + "_id": *id}
	if v := vf.expected(); v != nil {
		cmdObj["expected_version"] = *v
	}
	body, err := json.Marshal(cmdObj)
	if err != nil {
		return err
	}
	return c.publishAndWait(kind.subject(c.g), changeID, body)
}

// wrapCommand turns the contents of an apply file into the command to
// publish, and returns it with its change_id. A file whose object has "op"
// is a whole command and is sent as it is; any other object is the
// profile or user itself, wrapped as {"change_id", "op": "upsert", kind}.
// changeID, when not empty, replaces the file's change_id; a command
// without one gets a random UUID. expectedVersion, when not nil, replaces
// the file's expected_version. Field values are passed through untouched:
// the worker judges them.
func wrapCommand(kind adminKind, data []byte, changeID string, expectedVersion *int64) ([]byte, string, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, "", err
	}
	cmd := obj
	if _, isCommand := obj["op"]; !isCommand {
		inner, err := json.Marshal(obj)
		if err != nil {
			return nil, "", err
		}
		cmd = map[string]json.RawMessage{
			"op":         json.RawMessage(`"` + domain.OpUpsert + `"`),
			string(kind): inner,
		}
	}
	if changeID == "" {
		if raw, ok := cmd["change_id"]; ok {
			if err := json.Unmarshal(raw, &changeID); err != nil {
				return nil, "", errors.New("change_id must be a string")
			}
		}
	}
	if changeID == "" {
		changeID = uuid.NewString()
	}
	if !domain.ValidCommandID(changeID) {
		return nil, "", fmt.Errorf("change_id %q is not 1 to 128 characters of A-Za-z0-9._:-", changeID)
	}
	cmd["change_id"], _ = json.Marshal(changeID)
	if expectedVersion != nil {
		cmd["expected_version"], _ = json.Marshal(*expectedVersion)
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, "", err
	}
	if len(body) > domain.MaxPayloadBytes {
		return nil, "", fmt.Errorf("the command is %d bytes; the worker takes at most %d", len(body), domain.MaxPayloadBytes)
	}
	return body, changeID, nil
}

// decodeObject decodes one JSON object, keeping each value as sent.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return obj, nil
}

// readInput reads a file, or stdin for "-".
func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(name)
}

// attestRequest is the payload of <prefix>.attest.requests. It is the
// client's own type: domain.AttestRequest redacts its secrets when
// marshalled, as a server type should.
type attestRequest struct {
	RequestID              string          `json:"request_id"`
	ProfileID              string          `json:"profile_id"`
	Token                  string          `json:"token"`
	SessionDurationMinutes *int            `json:"session_duration_minutes,omitempty"`
	SessionCustomClaims    json.RawMessage `json:"session_custom_claims,omitempty"`
	SessionToken           string          `json:"session_token,omitempty"`
	SessionJWT             string          `json:"session_jwt,omitempty"`
}

func cmdAttest(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	profile := fs.String("profile", "", "profile_id (required)")
	token := fs.String("token", "", "the trusted token (JWS)")
	tokenFile := fs.String("token-file", "", "read the trusted token from `FILE` (- for stdin) instead")
	duration := fs.Int("duration", 0, "session_duration_minutes: start a session, or extend the given one, for `MINUTES` (5 to 527040)")
	sessionToken := fs.String("session-token", "", "add the factor to the session with this session_token")
	sessionJWT := fs.String("session-jwt", "", "add the factor to the session with this session_jwt")
	claims := fs.String("claims", "", "session_custom_claims, a JSON object")
	requestID := fs.String("request-id", "", "request_id, also the Nats-Msg-Id (default: a random UUID)")
	app := fs.String("app", "", "publish on <prefix>.attest.requests.`NAME` instead of <prefix>.attest.requests")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "profile"); err != nil {
		return err
	}
	if (*token == "") == (*tokenFile == "") {
		return usageErrorf("give one of -token and -token-file")
	}
	if *sessionToken != "" && *sessionJWT != "" {
		return usageErrorf("give -session-token or -session-jwt, not both")
	}
	req := attestRequest{RequestID: *requestID, ProfileID: *profile, Token: *token,
		SessionToken: *sessionToken, SessionJWT: *sessionJWT}
	if req.RequestID == "" {
		req.RequestID = uuid.NewString()
	}
	if !domain.ValidCommandID(req.RequestID) {
		return usageErrorf("-request-id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	if *tokenFile != "" {
		data, err := readInput(c.stdin, *tokenFile)
		if err != nil {
			return err
		}
		req.Token = strings.TrimSpace(string(data))
	}
	if isSet(fs, "duration") {
		req.SessionDurationMinutes = duration
	}
	if *claims != "" {
		if _, err := decodeObject([]byte(*claims)); err != nil {
			return usageErrorf("-claims: %v", err)
		}
		req.SessionCustomClaims = json.RawMessage(*claims)
	}
	subject := c.g.subject("attest", "requests")
	if *app != "" {
		if !prefixPattern.MatchString(*app) || strings.Contains(*app, ".") {
			return usageErrorf("-app %q must be one subject token of A-Za-z0-9_-", *app)
		}
		subject += "." + *app
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.publishAndWait(subject, req.RequestID, body)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// addPEMs appends the PEM files' contents to the profile's public_keys, in
// a bare profile object or in a command's "profile".
func addPEMs(data []byte, files []string) ([]byte, error) {
	if len(files) == 0 {
		return data, nil
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	target := obj
	if raw, ok := obj["profile"]; ok {
		if target, err = decodeObject(raw); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	var keys []string
	if raw, ok := target["public_keys"]; ok {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, errors.New("public_keys must be an array of strings")
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, string(b))
	}
	target["public_keys"], _ = json.Marshal(keys)
	if _, ok := obj["profile"]; ok {
		obj["profile"], _ = json.Marshal(target)
	}
	return json.Marshal(obj)
}
