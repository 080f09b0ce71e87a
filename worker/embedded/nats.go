// Package embedded runs the worker's default servers in-process: a NATS
// server with JetStream and FerretDB on SQLite, both persistent under a
// data directory. Tests use it to start real servers on free ports.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure an in-process NATS server.
type NATSOptions struct {
	// Addr is host:port; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's files.
	StoreDir string
	// ServerName names the server (cluster members need distinct names).
	ServerName string
	// Cluster, when set, makes the server a member of a cluster: its own
	// cluster listen address and the routes to the others.
	ClusterName   string
	ClusterAddr   string
	ClusterRoutes []string
}

// NATS is a running in-process server.
type NATS struct {
	Server *natsserver.Server
}

// ErrAddrInUse is returned when the listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// StartNATS starts a NATS server with JetStream and waits until it takes
// connections.
func StartNATS(o NATSOptions) (*NATS, error) {
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats port %q: %w", portStr, err)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	} else if err := probe(o.Addr); err != nil {
		return nil, err
	}
	opts := &natsserver.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	if o.ClusterAddr != "" {
		ch, cp, err := net.SplitHostPort(o.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster address: %w", err)
		}
		opts.Cluster.Name = o.ClusterName
		opts.Cluster.Host = ch
		opts.Cluster.Port, _ = strconv.Atoi(cp)
		opts.Routes = natsserver.RoutesFromStr(joinRoutes(o.ClusterRoutes))
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server did not become ready within 30s")
	}
	return &NATS{Server: s}, nil
}

// URL is the client URL.
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Shutdown stops the server and waits for it.
func (n *NATS) Shutdown() {
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}

func joinRoutes(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		out += "nats-route://" + r
	}
	return out
}

// probe fails with ErrAddrInUse when addr cannot be listened on.
func probe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s: %w", addr, ErrAddrInUse)
		}
		return err
	}
	return l.Close()
}

// FreeAddr returns a loopback address with a port free at the time of the
// call.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
