package packet

import "testing"

func benchmarkParse(b *testing.B, frame []byte) {
	var m FlowMatch
	if err := Parse(frame, 1, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Parse(frame, 1, &m)
	}
}

func BenchmarkParseTCP4(b *testing.B) { benchmarkParse(b, tcp4Frame(64)) }
func BenchmarkParseUDP4(b *testing.B) { benchmarkParse(b, udp4Frame(64)) }
func BenchmarkParseARP(b *testing.B)  { benchmarkParse(b, arpRequestFrame()) }
func BenchmarkParseTCP6(b *testing.B) { benchmarkParse(b, tcp6Frame(64)) }

func BenchmarkParseLayersTCP4(b *testing.B) {
	frame := tcp4Frame(64)
	var m FlowMatch
	var l Layers
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseLayers(frame, &m, &l)
	}
}
