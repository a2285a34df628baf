# What a request body costs the server before it has arrived: the buffer grows with the
# bytes received, not with what Content-Length claims. Twenty connections that each claim
# nearly 64 MB (a separate instance with OrderSyncMaxBody 64M), send a few bytes with a
# valid key and then hold, cost the server's children little; once they close, the server
# answers as before.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use Time::HiRes ();
use lib 't/lib';
use OSTest;

plan tests => 6;

my $HELD = 20;
my $CLAIM = 60 * 1024 * 1024;

# the processes and threads for the held requests exist before the baseline is taken,
# so that what grows is what the requests cost, not new processes
my $var = OSTest::new_instance('body-memory-instance', "OrderSyncMaxBody 67108864\n" . OSTest::fixed_workers());
my ($rc, $out, $port) = OSTest::start_instance($var);
is($rc, 0, 'a separate instance with OrderSyncMaxBody 64M starts') or diag($out);
my $info = JSON::PP::decode_json(OSTest::read_file("$var/instance.json"));
my $key = $info->{source}{key};
my $http = HTTP::Tiny->new(timeout => 10);

sub post_order {
    my $ref = shift;
    return $http->post("$info->{base_url}/orders", { headers => {
        Authorization => "Bearer $key", 'Content-Type' => 'application/json' },
        content => JSON::PP::encode_json(order_payload(reference => $ref)) });
}

# the children of the instance's parent process: kB of memory resident and committed
sub children_kb {
    my ($rss, $data) = (0, 0);
    opendir my $d, '/proc' or die $!;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/status" or next;
        my %st = map { /^(\w+):\s*(\d+)/ ? ($1 => $2) : () } <$fh>;
        next unless ($st{PPid} // 0) == $info->{pid};
        $rss += $st{VmRSS} // 0;
        $data += $st{VmData} // 0;
    }
    return ($rss, $data);
}

# every process has served requests before the baseline is taken
post_order("MEM-$$-warm-$_") for 1 .. 40;
my ($rss0, $data0) = children_kb();

my @held;
for my $i (1 .. $HELD) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5) or last;
    print $s "POST /ordersync/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           . "Authorization: Bearer $key\r\nContent-Type: application/json\r\n"
           . "Content-Length: $CLAIM\r\n\r\n{\"reference\": \"MEM-$i\", ";
    $s->flush;
    push @held, $s;
}
is(scalar(@held), $HELD, "$HELD connections each claim $CLAIM bytes and send a few");
# until every request is in the handler, waiting for the rest of its body
my ($rss1, $data1) = (0, 0);
for (1 .. 20) {
    Time::HiRes::sleep(0.25);
    my ($r, $d) = children_kb();
    ($rss1, $data1) = ($r > $rss1 ? $r : $rss1, $d > $data1 ? $d : $data1);
}
my $per_rss = ($rss1 - $rss0) / $HELD;
my $per_data = ($data1 - $data0) / $HELD;
diag(sprintf('children: resident %d -> %d kB (%+.0f kB per held request), committed %d -> %d kB '
             . '(%+.0f kB per held request)', $rss0, $rss1, $per_rss, $data0, $data1, $per_data));
ok($per_rss < 1024, 'resident memory grows by less than 1 MB per held request');
ok($per_data < 1024, 'committed memory (VmData) grows by less than 1 MB per held request, '
                     . 'not by the claimed size');

close $_ for @held;
Time::HiRes::sleep(0.5);
my $res = post_order("MEM-$$-after");
is($res->{status}, 202, 'after the held connections closed, an order is accepted: 202')
    or diag("$res->{status} $res->{content}");

($rc, $out) = OSTest::instance($var, 'stop');
is($rc, 0, 'the instance stops') or diag($out);
