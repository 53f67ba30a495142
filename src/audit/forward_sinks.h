#pragma once

#include <memory>
#include <string>

#include "audit/forwarder.h"

/// The real destinations of audit copies: journald's native socket, and a syslog server over
/// UDP, TCP or a unix socket.
namespace labgate::audit {

/// Sends each record as one journald entry (EncodeJournalEntry) to `socket_path`; an entry too
/// large for a datagram goes as a sealed memfd, the way sd_journal_send does.
std::unique_ptr<ForwardSink> MakeJournaldSink(std::string socket_path, std::string log_path);

/// A syslog server's address, as [audit] syslog_address names it once parsed.
struct SyslogDestination {
  enum class Transport { kUdp, kTcp, kUnix };
  Transport transport = Transport::kUnix;
  std::string host;  // udp, tcp: a name or an IP literal
  std::string port;  // udp, tcp
  std::string path;  // unix: datagram socket (as /dev/log), or a stream socket
  std::string text;  // as written, for messages
};

/// Sends each record as an RFC 5424 message (EncodeSyslogMessage): one datagram over UDP or a
/// unix datagram socket, octet-counted frames (RFC 6587) over TCP, a line over a unix stream.
/// `log_path` goes into each message's structured data, so copies of several logs in one store
/// can be told apart.
std::unique_ptr<ForwardSink> MakeSyslogSink(SyslogDestination destination, int facility, std::string log_path);

}  // namespace labgate::audit
