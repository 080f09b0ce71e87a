//go:build chaos && !race

package chaos

const raceEnabled = false
