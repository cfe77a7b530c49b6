// echo answers every request with the value of $MESSAGE, and /metrics with the number of
// requests it answered in Prometheus' text format, on :8080.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
)

func main() {
	message := os.Getenv("MESSAGE")
	var answered atomic.Int64
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE echo_requests_total counter\necho_requests_total %d\n", answered.Load())
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		answered.Add(1)
		fmt.Fprint(w, message)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
