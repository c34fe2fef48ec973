// vcsim for hyperexport's tests: govmomi's simulator.VPX() on 127.0.0.1 with the test session's certificate.
//
// Debian's golang-github-vmware-govmomi-dev ships the simulator library but not its vcsim command; mk/vsphere.mk
// builds this file against a copy of that source, with hyperexport_ext.go (the methods this simulator lacks)
// added to the simulator package.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	cert := flag.String("cert", "", "server certificate (PEM)")
	key := flag.String("key", "", "server key (PEM)")
	user := flag.String("user", "user", "the one accepted user name")
	password := flag.String("password", "pass", "the one accepted password")
	ready := flag.String("ready", "", "file to write the server's address to, as JSON, once it listens")
	flag.Parse()

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	model.Service.RegisterEndpoints = true
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	server := model.Service.NewServer()
	defer server.Close()

	address, _ := json.Marshal(map[string]string{"url": server.URL.Scheme + "://" + server.URL.Host + server.URL.Path})
	if *ready != "" {
		if err := os.WriteFile(*ready+".tmp", address, 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(*ready+".tmp", *ready); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(string(address))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
