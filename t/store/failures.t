# When the store cannot commit, the intake says so with 503 and Retry-After, and nothing is
# half-written: a store that cannot be written, a store that is full, a queue over its limit.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use lib 't/lib';
use OSTest;

my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
plan tests => 21;

my $tag = "F$$";
my $logs = Apache::Test::vars()->{t_logs};
expect_error_log('ordersync: (migrating the store failed|the store could not commit|order [^ ]+ not stored|storing order)',
                 'attempt to write a readonly database|unable to open database|database or disk is full',
                 'read-only transaction',
                 "mod_dbd|AH0063[0-9]|AH00629|AH02655|DBD: failed|can't connect");

sub post_on {
    my ($vhost, $ref, %over) = @_;
    Apache::TestRequest::module($vhost);
    my $res = json_req('POST', '/orders', order_payload(reference => $ref, %over), 'demo');
    Apache::TestRequest::module('default');
    return $res;
}

sub get_on {
    my ($vhost, $ref) = @_;
    Apache::TestRequest::module($vhost);
    my $res = json_req('GET', "/orders/demo/$ref", undef, 'demo');
    Apache::TestRequest::module('default');
    return $res;
}

# --- a store that cannot be written: SQLite, a file and directory without write permission;
# PostgreSQL, a session whose transactions are read-only
unless ($pg) {
    chmod 0755, "$logs/readonly" if -d "$logs/readonly";
    unlink "$logs/readonly/ro.db";
    mkdir "$logs/readonly";
    open my $fh, '>', "$logs/readonly/ro.db" or die $!;
    close $fh;
    chmod 0444, "$logs/readonly/ro.db";
    chmod 0555, "$logs/readonly";
}
my $res = post_on('os_readonly', "$tag-RO-1");
ok(problem_ok($res, 503, 'store-unavailable'), 'read-only store: 503 store-unavailable');
like($res->header('Retry-After') // '', qr/^\d+$/, 'read-only store: Retry-After');
unlike($res->content, qr/read-?only|sqlite|\.db|postgres/i, 'the problem does not leak store internals');
chmod 0755, "$logs/readonly" unless $pg;

# --- a store that fills up (a size cap exists for SQLite only)
SKIP: {
skip 'OrderSyncStoreMaxSize is SQLite only', 8 if $pg;
my (@accepted, $full);
for my $i (1 .. 60) {
    my $r = post_on('os_full', "$tag-FULL-$i",
                    options => { padding => 'x' x 900 },
                    items => [ map { { sku => "SKU-$_", description => 'y' x 500, qty => 1 } } 1 .. 4 ]);
    if ($r->code == 202) { push @accepted, "$tag-FULL-$i"; next }
    $full = [$r, "$tag-FULL-$i"];
    last;
}
ok(@accepted >= 1, 'the capped store accepted orders before it filled (' . scalar(@accepted) . ')');
ok($full, 'then it refused one');
ok($full && problem_ok($full->[0], 503, 'store-unavailable'), 'full store: 503 store-unavailable');
ok($full && ($full->[0]->header('Retry-After') // '') =~ /^\d+$/, 'full store: Retry-After');
is(get_on('os_full', $accepted[-1])->code, 200, 'the last accepted order is still there');
is(get_on('os_full', $accepted[0])->code, 200, 'the first accepted order is still there');
is($full ? get_on('os_full', $full->[1])->code : 0, 404, 'the refused order was not half-written');
$res = post_on('os_full', $accepted[0], options => { padding => 'x' x 900 },
               items => [ map { { sku => "SKU-$_", description => 'y' x 500, qty => 1 } } 1 .. 4 ]);
is($res->code, 200, 'a replay of an accepted order still answers 200 from a full store');
}

# --- a queue over its limit (OrderSyncQueueMax 4, shared by the two sources: 2 each)
my @codes = map { post_on('os_queue', "$tag-Q-$_")->code } 1 .. 2;
is_deeply(\@codes, [202, 202], "two orders fill the source's share of the queue");
$res = post_on('os_queue', "$tag-Q-3");
ok(problem_ok($res, 503, 'queue-full'), "the third of that source: 503 queue-full");
like($res->header('Retry-After') // '', qr/^\d+$/, 'queue full: Retry-After');
is(get_on('os_queue', "$tag-Q-3")->code, 404, 'the refused order was not stored');
sub post_mage2 {
    my $ref = shift;
    Apache::TestRequest::module('os_queue');
    my $r = json_req('POST', '/orders', order_payload(reference => $ref, source_id => 'mage2'),
                     'mage2');
    Apache::TestRequest::module('default');
    return $r;
}
is(post_mage2("$tag-M-1")->code, 202, "another source's order is still accepted");
is(post_mage2("$tag-M-2")->code, 202, 'until its own share is used as well');
ok(problem_ok(post_mage2("$tag-M-3"), 503, 'queue-full'), 'then the whole queue is full');
is(post_on('os_queue', "$tag-Q-2")->code, 200, 'a replay is still answered while the queue is full');
is(post_on('os_queue', "$tag-Q-2", currency => 'USD')->code, 503, 'a new version is refused while the queue is full');
my $full_lines = () = read_file("$logs/error_log") =~ /the delivery queue is full/g;
is($full_lines, 1, "a full queue is logged once, not once per refused order");
