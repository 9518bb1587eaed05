package provisioner

import "time"

// forgetSent readies a provisioner for a term of its reactor (elected
// processes): a term of this process before it may have marked devices
// sent that it never sent, and the process that reacted since did its own
// sending. It waits for the last term's senders to stop, then forgets
// their queues and marks; what is past the checkpoint is triggered again,
// and a device sent twice has the same command id both times.
func (p *Provisioner) forgetSent() {
	for {
		p.mu.Lock()
		busy := false
		for _, s := range p.servers {
			busy = busy || s.running
		}
		if !busy {
			for _, s := range p.servers {
				s.state.Sent, s.queue = nil, nil
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}
