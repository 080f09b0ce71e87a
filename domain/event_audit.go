package domain

// Light events of a repeat: a command message whose id already has an
// outcome, made by another message of the stream (another sequence), is
// answered from that outcome and announced by one of these, naming the
// first outcome's event. With them every sequence of the command streams
// maps to exactly one event (the audit, attestctl audit check, rests on
// it). A redelivery of the message that made the outcome gets none.
const (
	EventAttestRepeated  = "tat.attest.repeated"
	EventProfileRepeated = "tat.profile.repeated"
	EventUserRepeated    = "tat.user.repeated"
)
