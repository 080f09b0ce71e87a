package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tat-worker/attest/worker/workertest"
)

// walkStep is one command of the README's walkthrough.
type walkStep struct {
	line   string   // as written, continuation lines joined
	assign string   // VAR of VAR=$(...), else ""
	args   []string // the words after "go run ./cmd/attestctl", quotes removed
	output string   // the ```text block that follows it, if any
}

// readmeWalkthrough reads the commands of the README's walkthrough: the
// ```sh blocks of its section (continuation lines joined, comments and
// "make run" left out), each ```text block being the output of the
// command just before it.
func readmeWalkthrough(t *testing.T, readme string) []walkStep {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Walkthrough")
	if start < 0 {
		t.Fatal("README has no Walkthrough section")
	}
	text = text[start+1:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	var steps []walkStep
	var block, pending string
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case block == "" && strings.HasPrefix(line, "```"):
			block, lines = strings.TrimPrefix(line, "```"), nil
		case block != "" && line == "```":
			switch block {
			case "text":
				if len(steps) == 0 {
					t.Fatal("an output block before any command")
				}
				steps[len(steps)-1].output = strings.Join(lines, "\n") + "\n"
			case "sh":
				for _, l := range lines {
					if pending != "" {
						l, pending = pending+" "+strings.TrimSpace(l), ""
					}
					if strings.HasSuffix(l, "\\") {
						pending = strings.TrimSuffix(l, "\\")
						continue
					}
					l = strings.TrimSpace(l)
					if l == "" || strings.HasPrefix(l, "#") || l == "make run" {
						continue
					}
					steps = append(steps, parseStep(t, l))
				}
			}
			block = ""
		case block != "":
			lines = append(lines, line)
		}
	}
	return steps
}

// parseStep reads "go run ./cmd/attestctl ARGS" or
// "VAR=$(go run ./cmd/attestctl ARGS)".
func parseStep(t *testing.T, line string) walkStep {
	t.Helper()
	s := walkStep{line: line}
	rest := line
	if i := strings.Index(rest, "=$("); i > 0 && strings.HasSuffix(rest, ")") {
		s.assign, rest = rest[:i], strings.TrimSuffix(rest[i+3:], ")")
	}
	words := shellWords(t, rest)
	if len(words) < 3 || words[0] != "go" || words[1] != "run" || words[2] != "./cmd/attestctl" {
		t.Fatalf("the walkthrough has a line this test cannot run: %q", line)
	}
	s.args = words[3:]
	return s
}

// shellWords splits a command line as sh would, for what the walkthrough
// uses: words, "double quotes", 'single quotes'; $VAR is kept for later.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestREADMEWalkthrough runs the README's walkthrough word for word, as
// the README has it, against a real worker on real NATS and FerretDB;
// "tat_st_..." stands for the session_token the attest printed, as a
// person pastes it. Each output the README shows must be what the command
// prints (times, ids and secrets normalised).
func TestREADMEWalkthrough(t *testing.T) {
	root, _ := filepath.Abs("../..")
	steps := readmeWalkthrough(t, filepath.Join(root, "README.md"))
	// The walkthrough as this test expects it: change both together.
	want := []struct {
		cmd  string
		code int
	}{
		{"keygen", 0},
		{"profile apply", 0},
		{"user apply", 0},
		{"token mint", 0},
		{"attest", 0},
		{"attest", 1}, // the same token again
		{"sessions list", 0},
		{"sessions authenticate", 0},
		{"sessions revoke", 0},
		{"events", 0},
		{"audit check", 0},
	}
	if len(steps) != len(want) {
		t.Fatalf("the README's walkthrough has %d commands, this test expects %d: change them together", len(steps), len(want))
	}
	env := workertest.NewEnv(t)
	env.StartWorker(nil, nil)
	t.Chdir(t.TempDir())
	if err := os.Symlink(filepath.Join(root, "examples"), "examples"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAT_NATS_URL", env.NATSURL) // as a person's shell would have it
	vars := map[string]string{}
	var outputs []string
	for i, s := range steps {
		if !strings.HasPrefix(strings.Join(s.args, " "), want[i].cmd+" ") && strings.Join(s.args, " ") != want[i].cmd {
			t.Fatalf("walkthrough step %d is %q, this test expects attestctl %s", i+1, s.line, want[i].cmd)
		}
		args := make([]string, len(s.args))
		for j, a := range s.args {
			args[j] = os.Expand(a, func(k string) string { return vars[k] })
			if a == "tat_st_..." {
				args[j] = vars["session_token"]
			}
		}
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != want[i].code {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", s.line, code, want[i].code, out.String(), errb.String())
		}
		if s.assign != "" {
			vars[s.assign] = strings.TrimSpace(out.String())
		}
		if s.output != "" {
			n1, n2 := newNormalizer(), newNormalizer()
			if got, shown := n1.normalize(out.String()), n2.normalize(s.output); got != shown {
				t.Errorf("%s prints what the README does not show:\n--- README\n%s--- printed\n%s", s.line, shown, got)
			}
		}
		if want[i].cmd == "attest" && code == 0 {
			vars["session_token"] = fieldOf(t, out.String(), "session_token")
			if !strings.HasPrefix(vars["session_token"], "tat_st_") || fieldOf(t, out.String(), "roles") != "admin" ||
				fieldOf(t, out.String(), "factors") != "trusted_auth_token" {
				t.Fatalf("attest:\n%s", out.String())
			}
		}
		if code == 1 && !strings.HasPrefix(errb.String(), "token_replayed: ") {
			t.Errorf("%s: stderr %q, want token_replayed: ...", s.line, errb.String())
		}
		outputs = append(outputs, out.String())
	}
	events := outputs[9]
	for _, typ := range []string{"profile.created", "user.created", "session.created", "attest.failed", "session.revoked"} {
		if !strings.Contains(events, "  "+typ+" ") {
			t.Errorf("audit log lacks %s:\n%s", typ, events)
		}
	}
	if strings.Contains(events, vars["session_token"]) || strings.Contains(events, vars["TOKEN"]) {
		t.Fatal("audit log holds a bearer secret")
	}
	if _, err := os.Stat("dev.key.pem"); err != nil {
		t.Fatal(err)
	}
}
