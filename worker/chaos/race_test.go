//go:build chaos && race

package chaos

// raceEnabled: the test binary runs with -race, so the worker binary is
// built with -race too and its logs are searched for data races.
const raceEnabled = true
