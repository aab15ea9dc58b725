// Go (crypto/tls + crypto/x509) as an interop client for camera-web's tests/interop.rs.
//
//	client ID ADDRESS PORT NAME CAFILE [ID ADDRESS PORT NAME CAFILE ...]
//
// For each case: a TCP connection to ADDRESS:PORT (never to NAME, so a public name or address is
// never contacted), then a TLS handshake that verifies the server's chain against CAFILE alone
// and the certificate against NAME (a DNS name or an IP address, ServerName). Prints one line per
// case: "ID OK" or "ID FAIL <error>". Exits 0 when every case ran, whatever their results.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func check(address, port, name, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := dialer.Dial("tcp", net.JoinHostPort(address, port))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	client := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: name})
	return client.Handshake()
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || len(args)%5 != 0 {
		fmt.Fprintln(os.Stderr, "usage: client ID ADDRESS PORT NAME CAFILE [...]")
		os.Exit(2)
	}
	for i := 0; i < len(args); i += 5 {
		id, address, port, name, caFile := args[i], args[i+1], args[i+2], args[i+3], args[i+4]
		if err := check(address, port, name, caFile); err != nil {
			fmt.Printf("%s FAIL %s\n", id, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Printf("%s OK\n", id)
		}
	}
}
