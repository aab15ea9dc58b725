// A SCEP server for the camera's enrollment tests, built from micromdm's SCEP library as Debian
// packages it (golang-github-micromdm-scep-dev 2.1.0): micromdm's own service, transport, file
// depot and challenge check, with one difference from Debian's scepserver 2.1.0: the certificates
// it issues are server certificates (extendedKeyUsage serverAuth, keyUsage digitalSignature and
// keyEncipherment), as scepserver 2.2 and later issue with -sign-server-attrs and as an NDES
// "Web Server" template does. Debian's scepserver issues clientAuth-only certificates, which a web
// server must not serve (the tests also run against it and check the camera says so).
//
// Flags: -depot DIR (made with `scepserver ca -init -depot DIR`), -listen ADDR:PORT,
// -challenge SECRET, -validity DURATION (e.g. 30s, for renewal tests), -client (issue client
// certificates instead, extendedKeyUsage clientAuth: what an 802.1X template issues), -backdate
// DURATION (how long before now a certificate starts; 1m by default, as CAs allow for skew).
package main

import (
	"crypto/rand"
	"crypto/x509"
	"flag"
	"log"
	"net/http"
	"time"

	kitlog "github.com/go-kit/kit/log"
	filedepot "github.com/micromdm/scep/v2/depot/file"
	"github.com/micromdm/scep/v2/scep"
	scepserver "github.com/micromdm/scep/v2/server"
)

func main() {
	depotPath := flag.String("depot", "depot", "the CA folder (scepserver ca -init)")
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	challenge := flag.String("challenge", "", "the challenge password requests must carry")
	validity := flag.Duration("validity", 24*time.Hour, "lifetime of issued certificates")
	client := flag.Bool("client", false, "issue client certificates (clientAuth) instead of server certificates")
	backdate := flag.Duration("backdate", time.Minute, "how long before now certificates start (clock skew allowance)")
	flag.Parse()
	usage := x509.ExtKeyUsageServerAuth
	if *client {
		usage = x509.ExtKeyUsageClientAuth
	}

	depot, err := filedepot.NewFileDepot(*depotPath)
	if err != nil {
		log.Fatal(err)
	}
	caCerts, caKey, err := depot.CA(nil)
	if err != nil {
		log.Fatal(err)
	}
	issue := scepserver.CSRSignerFunc(func(m *scep.CSRReqMessage) (*x509.Certificate, error) {
		serial, err := depot.Serial()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      m.CSR.Subject,
			NotBefore:    time.Now().Add(-*backdate).UTC(),
			NotAfter:     time.Now().Add(*validity).UTC(),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     m.CSR.DNSNames,
			IPAddresses:  m.CSR.IPAddresses,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCerts[0], m.CSR.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	})
	var signer scepserver.CSRSigner = issue
	if *challenge != "" {
		signer = scepserver.ChallengeMiddleware(*challenge, issue)
	}
	svc, err := scepserver.NewService(caCerts[0], caKey, signer)
	if err != nil {
		log.Fatal(err)
	}
	handler := scepserver.MakeHTTPHandler(scepserver.MakeServerEndpoints(svc), svc, kitlog.NewNopLogger())
	log.Printf("listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, handler))
}
