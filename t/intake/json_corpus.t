# JSONTestSuite's parsing corpus POSTed raw to /ordersync/orders with a valid key: every
# n_ (not JSON) file is refused 400 (413 for the two files larger than OrderSyncMaxBody);
# no y_ (valid JSON) or i_ (implementation-defined) file gets a 5xx: a valid JSON text that
# is not an order is 422, duplicate object keys are refused 400 by policy.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use LWP::UserAgent ();
use HTTP::Request ();
use File::Spec ();
use lib 't/lib';
use OSTest;

my $top = Apache::Test::vars()->{top_dir};
my $dir = $ENV{OS_JSON_CORPUS}
    || File::Spec->catdir($top, '..', 'shared', 'corpora', 'JSONTestSuite', 'test_parsing');
opendir(my $dh, $dir) or die "$dir: $!";
my @files = sort grep { /^[nyi]_.*\.json$/ } readdir $dh;
closedir $dh;
my @n = grep { /^n_/ } @files;
my @y = grep { /^y_/ } @files;
my @i = grep { /^i_/ } @files;
my @dup = grep { /^y_object_duplicated_key/ } @y;

plan tests => @files + @dup + 2;

my $MAX_BODY = 65536;
my $url = 'http://' . Apache::TestRequest::hostport() . hub_url('/orders');
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my @auth = (Authorization => 'Bearer ' . key('demo'), 'Content-Type' => 'application/json');
my $crashes = 0;

sub post_file {
    my $f = shift;
    my $body = read_file("$dir/$f");
    my $res = $ua->request(HTTP::Request->new(POST => $url, [@auth], $body));
    # A crashed child shows as LWP's own 500; its log line is announced only if it happened.
    if (($res->header('Client-Warning') // '') eq 'Internal response') {
        $crashes++;
        diag("$f: no answer from the server: " . $res->status_line);
    }
    return ($res, length $body);
}

sub type_of { my $d = decode($_[0]) || {}; return $d->{type} // '' }

{
    for my $f (@n) {
        my ($res, $len) = post_file($f);
        if ($len > $MAX_BODY) {
            ok($res->code == 413 && type_of($res) eq 'urn:ordersync:problem:body-too-large', $f);
        }
        else {
            ok($res->code == 400
               && type_of($res) =~ /^urn:ordersync:problem:(?:malformed-json|too-deep)$/, $f)
                or diag("$f: " . $res->code . ' ' . substr($res->content, 0, 160));
        }
    }
}

for my $f (@y, @i) {
    my ($res) = post_file($f);
    my $c = $res->code;
    my $ok = $f =~ /^y_/ ? ($c == 400 || $c == 422) : ($c >= 400 && $c < 500);
    ok($ok && ($res->header('Content-Type') // '') eq 'application/problem+json', $f)
        or diag("$f: " . $res->code . ' ' . substr($res->content, 0, 160));
}

{
    for my $f (@dup) {
        my ($res) = post_file($f);
        ok($res->code == 400 && type_of($res) eq 'urn:ordersync:problem:malformed-json',
           "$f: duplicate keys are refused 400 malformed-json");
    }
}

{
    is($crashes, 0, 'no request of the corpus went unanswered (no crashed child)');
}
my $res = json_req('GET', '/orders/demo/json-corpus-none', undef, 'demo');
is($res->code, 404, 'the hub still answers after the corpus');
