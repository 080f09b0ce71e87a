package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/domain"
)

// Profiles and users: commands (contract sections 4 and 5) and reads
// (the tat-reads service), all through the client.

// versionFlags are the flags every admin command takes.
type versionFlags struct {
	fs              *flagSet
	changeID        *string
	expectedVersion *int64
}

func addVersionFlags(fs *flagSet, defaultID string) versionFlags {
	return versionFlags{
		fs:              fs,
		changeID:        fs.String("change-id", "", "the command's change_id `ID`, also its Nats-Msg-Id; the same id again gets the first outcome (default: "+defaultID+")"),
		expectedVersion: fs.Int64("expected-version", 0, "send expected_version `N`: applied only if the stored version is N (0: must not exist yet)"),
	}
}

// check refuses a -change-id the worker would refuse, before connecting.
func (v versionFlags) check() error {
	if *v.changeID != "" && !domain.ValidCommandID(*v.changeID) {
		return usageErrorf("-change-id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	return nil
}

// expected returns the -expected-version value when it was given.
func (v versionFlags) expected() *int64 {
	if isSet(v.fs, "expected-version") {
		return client.ExpectVersion(*v.expectedVersion)
	}
	return nil
}

// applyFile is an apply file decoded: a bare object (T: client.Profile or
// client.User, so that what "get -json" prints applies as it is; version
// and times are not sent), or a whole command with "op".
type applyFile[T any] struct {
	ChangeID        string
	Op              string // upsert or delete
	ExpectedVersion *int64
	Object          *T     // upsert
	ID              string // delete: the profile_id or user_id
}

// decodeApplyFile decodes an apply file of kind ("profile" or "user")
// strictly: an unknown or misspelt member is refused here, with its name,
// rather than dropped.
func decodeApplyFile[T any](kind string, data []byte) (applyFile[T], error) {
	var f applyFile[T]
	obj, err := decodeObject(data)
	if err != nil {
		return f, err
	}
	if _, isCommand := obj["op"]; !isCommand {
		f.Op, f.Object = "upsert", new(T)
		return f, decodeStrict(data, f.Object)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := obj[k]
		switch k {
		case "change_id":
			err = json.Unmarshal(raw, &f.ChangeID)
		case "op":
			err = json.Unmarshal(raw, &f.Op)
		case "expected_version":
			f.ExpectedVersion = new(int64)
			err = json.Unmarshal(raw, f.ExpectedVersion)
		case kind:
			f.Object = new(T)
			err = decodeStrict(raw, f.Object)
		case kind + "_id":
			err = json.Unmarshal(raw, &f.ID)
		default:
			err = errors.New("not a member of a " + kind + " command")
		}
		if err != nil {
			return f, fmt.Errorf("%s: %v", k, err)
		}
	}
	switch {
	case f.Op == "upsert" && (f.Object == nil || f.ID != ""):
		return f, fmt.Errorf("an upsert command has %q (and no %q)", kind, kind+"_id")
	case f.Op == "delete" && (f.ID == "" || f.Object != nil):
		return f, fmt.Errorf("a delete command has %q (and no %q)", kind+"_id", kind)
	case f.Op != "upsert" && f.Op != "delete":
		return f, fmt.Errorf("op: %q is neither upsert nor delete", f.Op)
	}
	return f, nil
}

// decodeObject checks that data is one JSON object and returns its
// members as sent.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("want one JSON object")
	}
	var obj map[string]json.RawMessage
	if err := decodeStrict(trimmed, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown members
// and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%s: want a JSON %s, not a %s", memberPath(te.Field), jsonKind(te.Type.Kind()), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown member %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// memberPath is a decoding error's field path without the Go names of
// embedded structs: "ProfileSpec.can_jit_provision" is can_jit_provision.
func memberPath(field string) string {
	var out []string
	for p := range strings.SplitSeq(field, ".") {
		if p != "" && (p[0] < 'A' || p[0] > 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// jsonKind names a Go kind as JSON does.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "number"
}

// readInput reads a file, or stdin for "-".
func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(name)
}

// inputName names an input file in messages.
func inputName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// readPEMs reads public key files for a profile's public_keys.
func readPEMs(files []string) ([]string, error) {
	var keys []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, string(b))
	}
	return keys, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdProfileApply(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	file := fs.String("f", "", "JSON `FILE` (- for stdin): a profile (what 'profile get -json' prints), or a whole command with \"op\" (required)")
	var pems stringList
	fs.Var(&pems, "pem", "add the public key in PEM `FILE` to the profile's public_keys (repeatable)")
	vf := addVersionFlags(fs, "the file's, else a random id")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "f"); err != nil {
		return err
	}
	if err := vf.check(); err != nil {
		return err
	}
	data, err := readInput(c.stdin, *file)
	if err != nil {
		return err
	}
	f, err := decodeApplyFile[client.Profile]("profile", data)
	if err != nil {
		return fmt.Errorf("%s: %w", inputName(*file), err)
	}
	keys, err := readPEMs(pems)
	if err != nil {
		return err
	}
	if f.Op == "delete" && len(keys) > 0 {
		return usageErrorf("-pem adds keys to a profile; %s deletes one", *file)
	}
	changeID, expected := f.ChangeID, f.ExpectedVersion
	if *vf.changeID != "" {
		changeID = *vf.changeID
	}
	if v := vf.expected(); v != nil {
		expected = v
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	var res *client.ProfileResult
	if f.Op == "delete" {
		res, err = cl.DeleteProfile(c.ctx, client.DeleteProfileCommand{ChangeID: changeID, ExpectedVersion: expected, ProfileID: f.ID})
	} else {
		spec := f.Object.ProfileSpec
		spec.PublicKeys = append(spec.PublicKeys, keys...)
		res, err = cl.ApplyProfile(c.ctx, client.ProfileCommand{ChangeID: changeID, ExpectedVersion: expected, Profile: spec})
	}
	if err != nil {
		return c.explain(cn, err)
	}
	return c.printProfileResult(res, f.Op == "delete")
}

func cmdProfileDelete(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `PROFILE_ID` to delete (required)")
	vf := addVersionFlags(fs, "a random id")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "id"); err != nil {
		return err
	}
	if err := vf.check(); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	res, err := cl.DeleteProfile(c.ctx, client.DeleteProfileCommand{ChangeID: *vf.changeID, ExpectedVersion: vf.expected(), ProfileID: *id})
	if err != nil {
		return c.explain(cn, err)
	}
	return c.printProfileResult(res, true)
}

func (c *cli) printProfileResult(res *client.ProfileResult, deleted bool) error {
	switch {
	case c.g.json:
		return printJSON(c.stdout, res)
	case deleted:
		_, err := fmt.Fprintf(c.stdout, "deleted profile %s (version %d)\n", res.Profile.ProfileID, res.Profile.Version)
		return err
	}
	return writeProfiles(c.stdout, []client.Profile{res.Profile})
}

func cmdProfileGet(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `PROFILE_ID` (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "id"); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	p, err := cl.GetProfile(c.ctx, *id)
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, p)
	}
	return writeProfile(c.stdout, *p)
}

func cmdProfileList(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	ps, err := cl.ListProfiles(c.ctx)
	if err != nil {
		return c.explain(cn, err)
	}
	switch {
	case c.g.json:
		return printJSON(c.stdout, map[string]any{"profiles": ps})
	case len(ps) == 0:
		_, err := fmt.Fprintln(c.stdout, "no profiles")
		return err
	}
	return writeProfiles(c.stdout, ps)
}

func cmdUserApply(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	file := fs.String("f", "", "JSON `FILE` (- for stdin): a user (what 'user get -json' prints), or a whole command with \"op\" (required)")
	vf := addVersionFlags(fs, "the file's, else a random id")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "f"); err != nil {
		return err
	}
	if err := vf.check(); err != nil {
		return err
	}
	data, err := readInput(c.stdin, *file)
	if err != nil {
		return err
	}
	f, err := decodeApplyFile[client.User]("user", data)
	if err != nil {
		return fmt.Errorf("%s: %w", inputName(*file), err)
	}
	changeID, expected := f.ChangeID, f.ExpectedVersion
	if *vf.changeID != "" {
		changeID = *vf.changeID
	}
	if v := vf.expected(); v != nil {
		expected = v
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	var res *client.UserResult
	if f.Op == "delete" {
		res, err = cl.DeleteUser(c.ctx, client.DeleteUserCommand{ChangeID: changeID, ExpectedVersion: expected, UserID: f.ID})
	} else {
		res, err = cl.ApplyUser(c.ctx, client.UserCommand{ChangeID: changeID, ExpectedVersion: expected, User: f.Object.UserSpec})
	}
	if err != nil {
		return c.explain(cn, err)
	}
	return c.printUserResult(res, f.Op == "delete")
}

func cmdUserDelete(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `USER_ID` to delete (required)")
	vf := addVersionFlags(fs, "a random id")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "id"); err != nil {
		return err
	}
	if err := vf.check(); err != nil {
		return err
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	res, err := cl.DeleteUser(c.ctx, client.DeleteUserCommand{ChangeID: *vf.changeID, ExpectedVersion: vf.expected(), UserID: *id})
	if err != nil {
		return c.explain(cn, err)
	}
	return c.printUserResult(res, true)
}

func (c *cli) printUserResult(res *client.UserResult, deleted bool) error {
	switch {
	case c.g.json:
		return printJSON(c.stdout, res)
	case deleted:
		_, err := fmt.Fprintf(c.stdout, "deleted user %s (version %d)\n", res.User.UserID, res.User.Version)
		return err
	}
	return writeUsers(c.stdout, []client.User{res.User})
}

func cmdUserGet(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	id := fs.String("id", "", "the `USER_ID`")
	email := fs.String("email", "", "an `EMAIL` address of the user")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*id == "") == (*email == "") {
		return usageErrorf("give one of -id and -email")
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	var u *client.User
	if *id != "" {
		u, err = cl.GetUser(c.ctx, *id)
	} else {
		u, err = cl.GetUserByEmail(c.ctx, *email)
	}
	if err != nil {
		return c.explain(cn, err)
	}
	if c.g.json {
		return printJSON(c.stdout, u)
	}
	return writeUser(c.stdout, *u)
}

func cmdUserList(c *cli, cmd *command, args []string) error {
	fs := c.flags(cmd)
	limit := fs.Int("limit", 0, "`N` users per page, 1 to 1000 (default: the service's, 100)")
	cursor := fs.String("cursor", "", "start at the page `CURSOR`: the next_cursor of the page before")
	all := fs.Bool("all", false, "follow next_cursor to the last page and list every user")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *limit < 0 || *limit > 1000 {
		return usageErrorf("-limit must be 1 to 1000")
	}
	if *all && *cursor != "" {
		return usageErrorf("give -cursor or -all, not both")
	}
	cl, cn, err := c.client()
	if err != nil {
		return err
	}
	defer cn.nc.Close()
	users := []client.User{}
	next := *cursor
	seen := map[string]bool{}
	for {
		page, err := cl.ListUsers(c.ctx, client.ListUsersRequest{Limit: *limit, Cursor: next})
		if err != nil {
			return c.explain(cn, err)
		}
		users = append(users, page.Users...)
		next = page.NextCursor
		if !*all || next == "" {
			break
		}
		if seen[next] {
			return fmt.Errorf("the reads service repeated next_cursor %q", next)
		}
		seen[next] = true
	}
	switch {
	case c.g.json:
		return printJSON(c.stdout, struct {
			Users      []client.User `json:"users"`
			NextCursor string        `json:"next_cursor"`
		}{users, next})
	case len(users) == 0:
		_, err := fmt.Fprintln(c.stdout, "no users")
		return err
	}
	if err := writeUsers(c.stdout, users); err != nil {
		return err
	}
	if next != "" {
		more := "attestctl user list"
		if *limit != 0 {
			more += fmt.Sprintf(" -limit %d", *limit)
		}
		fmt.Fprintf(c.stderr, "more users: %s -cursor %s (or -all)\n", more, next)
	}
	return nil
}
