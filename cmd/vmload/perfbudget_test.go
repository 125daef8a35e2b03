package main

import (
	"bytes"
	"strings"
	"testing"
)

// Three samples as perf script prints them: a send (kernel leaf), a
// recording frame (Go leaf) and one no row claims.
const perfScriptSample = `voicemail  5394 70781.180292:    1001001 cpu-clock:ppp: 
	ffffffff81df9665 loopback_xmit+0x5 ([kernel.kallsyms])
	ffffffff81e81871 __sys_sendmmsg+0x151 ([kernel.kallsyms])
	          779ae9 github.com/vmserver/voicemail/internal/udpbatch.(*Conn).init.func2+0x69 (/tmp/voicemail)
	          79dd1a github.com/vmserver/voicemail/media.(*clock).run+0x51a (/tmp/voicemail)

voicemail  5412 70781.185880:    1001001 cpu-clock:ppp: 
	          7af1bb github.com/vmserver/voicemail/media.(*WAVWriter).Write+0x29b (/tmp/voicemail)
	          7a120c github.com/vmserver/voicemail/media.(*mux).readLoop+0x18c (/tmp/voicemail)

voicemail  5413 70781.186880:    1001001 cpu-clock:ppp: 
	          1234 sqlite3VdbeExec+0x10 (/tmp/voicemail)
`

func TestPerfBudget(t *testing.T) {
	stacks, err := parsePerfScript(strings.NewReader(perfScriptSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 3 || len(stacks[0]) != 4 || stacks[0][0].sym != "loopback_xmit" || !stacks[0][0].kernel || stacks[1][0].kernel {
		t.Fatalf("parsed %+v", stacks)
	}
	lines := budget(stacks)
	want := map[string][2]int{ // samples, kernel
		budgetRows[0].name:       {1, 1}, // sendmmsg before the clock that called it
		budgetRows[3].name:       {1, 0},
		lines[len(lines)-1].name: {1, 0},
		budgetRows[1].name:       {0, 0},
	}
	for _, l := range lines {
		w := want[l.name]
		if l.samples != w[0] || l.kernel != w[1] {
			t.Errorf("%s: %d samples, %d kernel; want %v", l.name, l.samples, l.kernel, w)
		}
	}
	var b bytes.Buffer
	printBudget(&b, lines)
	if !strings.Contains(b.String(), "| **all** (3 samples) | 100 | **33.3** |") {
		t.Errorf("table:\n%s", b.String())
	}
}
