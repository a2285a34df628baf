# What an unauthenticated request may cost on the drop-in route: its envelope carries the
# key (access_key) in the body, so the body is scanned as it arrives and the key is checked
# as soon as it is complete. A wrong key is answered 401 before the rest of the body has
# been sent; an envelope whose first 64 KB (OS_PREAUTH_MAX) hold no access_key is answered
# 413 access-key-too-late, also when the key comes later; a body that is not JSON before the
# key is 400. A correct key lets the body go on up to OrderSyncMaxBody. Chunked bodies too.
# A separate instance with OrderSyncMaxBody 64M (the suite's server allows only 64 KB).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use IO::Socket::INET ();
use IO::Select ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan tests => 34;

my $PREAUTH = 65536;
my $JSON = JSON::PP->new->canonical;
my $STRICT = JSON::PP->new->utf8;

# the processes and threads for the held requests exist before the baseline is taken,
# so that what grows is what the requests cost, not new processes
my $var = OSTest::new_instance('preauth-instance', "OrderSyncMaxBody 67108864\n" . OSTest::fixed_workers());
my ($rc, $out, $port) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance with OrderSyncMaxBody 64M starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $key = $info->{source}{key};

# Sends the request head and `first` (a chunk of its own when chunked), then waits up to
# `wait` seconds for the answer without sending anything more; then sends `rest`, if any,
# and reads the answer. Returns (status, headers text, decoded body or undef, seconds,
# whether the answer came before `rest` was sent).
sub exchange {
    my (%a) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5) or die $!;
    my $head = "POST /ordersync/api/v1/order/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             . "Content-Type: application/json\r\n";
    $head .= $a{chunked} ? "Transfer-Encoding: chunked\r\n" : "Content-Length: $a{length}\r\n";
    my $chunk = sub { my $d = shift; $a{chunked} ? sprintf("%x\r\n%s\r\n", length $d, $d) : $d };
    my $t0 = Time::HiRes::time();
    syswrite_all($s, "$head\r\n" . $chunk->($a{first}));
    my $sel = IO::Select->new($s);
    my $answered = $sel->can_read($a{wait} // 5);
    my $early = $answered ? 1 : 0;
    if (!$answered && defined $a{rest}) {
        syswrite_all($s, $chunk->($a{rest}) . ($a{chunked} ? "0\r\n\r\n" : ''));
        $answered = $sel->can_read(10);
    }
    my $secs = Time::HiRes::time() - $t0;
    my $resp = '';
    if ($answered) {
        while ($sel->can_read(5)) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $resp .= $buf;
            last if response_complete($resp);
        }
    }
    close $s;
    my ($status) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my ($hdr, $body) = split /\r\n\r\n/, $resp, 2;
    my $doc = eval { $STRICT->decode($body // '') };
    return ($status // 0, $hdr // '', $doc, $secs, $early);
}

sub syswrite_all {
    my ($s, $d) = @_;
    local $SIG{PIPE} = 'IGNORE';
    while (length $d) {
        my $n = syswrite($s, $d);
        return unless $n;
        substr($d, 0, $n) = '';
    }
}

sub response_complete {
    my $r = shift;
    my ($h, $b) = split /\r\n\r\n/, $r, 2;
    return 0 unless defined $b;
    my ($len) = $h =~ /^Content-Length:\s*(\d+)/mi;
    return defined $len && length($b) >= $len;
}

sub envelope_head {    # the start of an envelope: access_key first when given
    my ($k) = @_;
    return defined $k ? '{"access_key": ' . $JSON->encode([$k]) =~ s/^\[|\]$//gr . ', "entity_id": 1, '
                      : '{"entity_id": 1, ';
}

my $big = 20 * 1024 * 1024;

# ---------------------------------------------------------------- a wrong key, at once

for my $chunked (0, 1) {
    my $how = $chunked ? 'chunked' : 'Content-Length';
    my ($st, $hdr, $d, $secs, $early) = exchange(
        length => $big, chunked => $chunked,
        first => envelope_head('not-the-key') . '"payload": {"reference": "PRE-1", "note": "');
    ok($early && $st == 401, "$how: a wrong access_key claiming 20 MB is answered 401 before "
       . "the rest of the body was sent (" . sprintf('%.2f', $secs) . " s)") or diag("$st $hdr");
    is($d && $d->{type}, 'urn:ordersync:problem:unauthorized', "$how: an unauthorized problem");
    like($hdr, qr/^Connection: close/mi, "$how: the connection closes (the body is not read)");
}

# ---------------------------------------------------------------- no key in the first 64 KB

for my $chunked (0, 1) {
    my $how = $chunked ? 'chunked' : 'Content-Length';
    my $first = envelope_head(undef) . '"payload": {"reference": "PRE-2", "note": "'
              . ('A' x ($PREAUTH + 10));
    my ($st, $hdr, $d, $secs, $early) = exchange(length => $big, chunked => $chunked,
                                                 first => $first);
    ok($early && $st == 413, "$how: 64 KB without an access_key is answered 413 before the "
       . "rest was sent") or diag("$st $hdr");
    $d ||= {};
    is($d->{type}, 'urn:ordersync:problem:access-key-too-late', "$how: access-key-too-late");
    ok(($d->{preauth_limit} // 0) == $PREAUTH && ($d->{detail} // '') =~ /\b$PREAUTH\b.*first/,
       "$how: the problem names the limit ($PREAUTH bytes) and asks for the key first")
        or diag($d->{detail});
}

# the right key, but after 64 KB of payload: refused the same way (the key must come first)
{
    my $pad = ' ' x ($PREAUTH + 100);
    my $body = '{"entity_id": 1, "payload": ' . $JSON->encode(order_payload(reference => "PRE-$$-late"))
             . ",$pad\"access_key\": \"$key\"}";
    my ($st, $hdr, $d) = exchange(length => length $body, first => $body);
    ok($st == 413 && ($d || {})->{type} eq 'urn:ordersync:problem:access-key-too-late',
       'the correct access_key after 64 KB of envelope: 413 access-key-too-late')
        or diag("$st $hdr");
}

# ---------------------------------------------------------------- not JSON, or no string key

{
    my ($st, $hdr, $d, $secs, $early) = exchange(length => $big,
        first => '{"access_key" "x", "payload": {"note": "');
    ok($early && $st == 400, 'malformed JSON before the access_key: 400 before the rest was sent')
        or diag("$st $hdr");
    is(($d || {})->{type}, 'urn:ordersync:problem:malformed-json', 'a malformed-json problem');
    ok(($d || {})->{offset} >= 13 && $d->{offset} <= 17, 'the offset of the error, at the missing colon');

    ($st, $hdr, $d, $secs, $early) = exchange(length => $big,
        first => '{"access_key": 12345, "payload": {"note": "');
    ok($early && $st == 401, 'an access_key that is not a string: 401 before the rest was sent')
        or diag("$st $hdr");
    ($st, $hdr, $d, $secs, $early) = exchange(length => $big,
        first => '[' . ('"' . ('x' x 1000) . '",') x 10);
    ok($early && $st == 401, 'an envelope that is not an object: 401 at once') or diag("$st $hdr");
    ($st, $hdr, $d, $secs, $early) = exchange(length => $big,
        first => envelope_head("$key\x{0}junk") . '"payload": {"note": "');
    ok($early && $st == 401, 'the key followed by an escaped NUL: 401 at once') or diag("$st $hdr");
}

# ---------------------------------------------------------------- accepted

# the key within the first 64 KB, after the payload (as long as it is within the limit)
{
    my $body = '{"entity_id": 7, "payload": ' . $JSON->encode(order_payload(reference => "PRE-$$-mid"))
             . ',' . (' ' x 40000) . "\"access_key\": \"$key\"}";
    my ($st, $hdr, $d) = exchange(length => length $body, first => $body);
    is($st, 200, 'the correct access_key after 40 KB of envelope: 200') or diag($hdr);
    is(($d || {})->{reference}, "PRE-$$-mid", 'the order was accepted');
}

# the key first, then a body far larger than 64 KB (4 MB of the payload's whitespace)
for my $chunked (0, 1) {
    my $how = $chunked ? 'chunked' : 'Content-Length';
    my $ref = "PRE-$$-big-$chunked";
    my $first = envelope_head($key) . '"payload": ';
    my $rest = $JSON->encode(order_payload(reference => $ref)) . (' ' x (4 * 1024 * 1024)) . '}';
    my ($st, $hdr, $d, $secs, $early) = exchange(
        length => length($first) + length($rest), chunked => $chunked, first => $first,
        rest => $rest, wait => 0.5);
    ok(!$early, "$how: with the correct key the server waits for the rest of the body");
    is($st, 200, "$how: the correct key first and a 4 MB envelope: 200") or diag($hdr);
    is(($d || {})->{reference}, $ref, "$how: the order was accepted");
    ok(($hdr !~ /^Connection: close/mi), "$how: the connection stays open");
}

# over OrderSyncMaxBody with the correct key: 413 body-too-large, as on every route
{
    my ($st, $hdr, $d) = exchange(length => 64 * 1024 * 1024 + 1,
        first => envelope_head($key) . '"payload": {');
    ok($st == 413 && ($d || {})->{type} eq 'urn:ordersync:problem:body-too-large',
       'a Content-Length over OrderSyncMaxBody: 413 body-too-large') or diag("$st $hdr");
}

# ---------------------------------------------------------------- what 20 of them cost

# the children of the instance's parent process: kB resident
sub children_rss {
    my $rss = 0;
    opendir my $dh, '/proc' or die $!;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/status" or next;
        my %st = map { /^(\w+):\s*(\d+)/ ? ($1 => $2) : () } <$fh>;
        $rss += $st{VmRSS} // 0 if ($st{PPid} // 0) == $info->{pid};
    }
    return $rss;
}

# twenty envelopes of 3 MB with a wrong key, each sent whole but for its last byte: had the
# server read them, it would now hold 60 MB
{
    my $SIZE = 3 * 1024 * 1024;
    my $rss0 = children_rss();
    my @socks;
    local $SIG{PIPE} = 'IGNORE';
    for my $i (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5) or last;
        my $body = envelope_head('not-the-key') . '"payload": {"note": "';
        $body .= 'x' x ($SIZE - length($body) - 2) . '"}}';
        syswrite_all($s, "POST /ordersync/api/v1/order/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         . "Content-Type: application/json\r\nContent-Length: $SIZE\r\n\r\n"
                         . substr($body, 0, $SIZE - 1));
        push @socks, $s;
    }
    Time::HiRes::sleep(1);
    my $rss1 = children_rss();
    my $per = ($rss1 - $rss0) / 20;
    diag(sprintf('children resident: %d -> %d kB (%+.0f kB per 3 MB unauthenticated envelope)',
                 $rss0, $rss1, $per));
    ok($per < 512, 'twenty 3 MB envelopes with a wrong key: the children grow by less than '
                   . '512 kB each');
    close $_ for @socks;
    my $ref = "PRE-$$-after";
    my $body = $JSON->encode({ access_key => $key, entity_id => 1,
                               payload => order_payload(reference => $ref) });
    my ($st, $hdr, $d) = exchange(length => length $body, first => $body);
    is($st, 200, 'afterwards a correct envelope is accepted: 200') or diag($hdr);
}

($rc, $out) = OSTest::instance($var, 'stop');
is($rc, 0, 'the instance stops') or diag($out);
