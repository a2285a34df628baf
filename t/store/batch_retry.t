# One order the store cannot take must not cost the others of its batch: a batch that fails is
# committed again order by order, so only that order is refused (503) and every other order of
# the batch is accepted and stored. And every accepted order is committed together with its
# delivery job (one 'delivery' job per order, for the version answered, queued).
#
# The store is made to refuse orders whose reference starts with POISON- (a trigger added to
# the test server's store), while eight clients post at once so that the committer batches.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use Test::More;
use JSON::PP ();
use HTTP::Tiny ();
use POSIX ();
use lib 't/lib';
use OSTest;

my $pg = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
my $clients = 8;
my $per_client = 30;
plan tests => 9;

expect_error_log('ordersync: the store could not commit', 'poisoned order');

my $logs = Apache::Test::vars()->{t_logs};
my $db = "$logs/ordersync.db";
my $tag = "BR$$";

sub sql {   # runs SQL on the test server's store; returns its output
    my ($q) = @_;
    my @cmd = $pg ? ('psql', '-qtA', '-F', '|', '-h', $ENV{OS_PG_SOCK}, '-p', $ENV{OS_PG_PORT},
                     '-U', 'postgres', 'ordersync', '-c', $q)
                  : ('sqlite3', '-cmd', '.timeout 5000', $db, $q);
    open my $fh, '-|', @cmd or die "@cmd: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    die "SQL failed ($?): $q\n" if $?;
    return $out;
}

# the store must exist before the trigger can be added: one order first
is(json_req('POST', '/orders', order_payload(reference => "$tag-first"), 'demo')->code, 202,
   'an order is accepted before the store refuses any');
if ($pg) {
    sql(q{CREATE OR REPLACE FUNCTION os_test_poison() RETURNS trigger AS $$ BEGIN
            IF NEW.reference LIKE 'POISON-%' THEN RAISE EXCEPTION 'poisoned order'; END IF;
            RETURN NEW; END $$ LANGUAGE plpgsql});
    sql('DROP TRIGGER IF EXISTS os_test_poison ON os_orders');
    sql('CREATE TRIGGER os_test_poison BEFORE INSERT ON os_orders FOR EACH ROW '
        . 'EXECUTE FUNCTION os_test_poison()');
}
else {
    sql('DROP TRIGGER IF EXISTS os_test_poison');
    sql(q{CREATE TRIGGER os_test_poison BEFORE INSERT ON os_orders
          WHEN NEW.reference LIKE 'POISON-%' BEGIN SELECT RAISE(ABORT, 'poisoned order'); END});
}

# every client posts back to back; every sixth order of a client is poisoned
my @lines = OSTest::parallel_posts($clients, $per_client, sub {
    my ($c, $i) = @_;
    my $ref = ($i % 6 == 0 ? 'POISON-' : '') . "$tag-$c-$i";
    return ($ref, order_payload(reference => $ref));
});
if ($pg) { sql('DROP TRIGGER os_test_poison ON os_orders'); sql('DROP FUNCTION os_test_poison()') }
else     { sql('DROP TRIGGER os_test_poison') }

is(scalar @lines, $clients * $per_client, 'every request was answered');
my @poison = grep { /^POISON-/ } @lines;
my @good = grep { !/^POISON-/ } @lines;
my @bad_poison = grep { !/ 503 - - - urn:ordersync:problem:store-unavailable$/ } @poison;
is(scalar @bad_poison, 0, 'each poisoned order is refused alone: 503 store-unavailable')
    or diag(explain([@bad_poison[0 .. ($#bad_poison < 4 ? $#bad_poison : 4)]]));
my @bad_good = grep { my ($ref, $code, $aref, $id, $v) = split ' '; $code != 202 || $aref ne $ref || $v ne '1' } @good;
is(scalar @bad_good, 0, 'every other order is accepted: 202 for its own reference, version 1')
    or diag(explain([@bad_good[0 .. ($#bad_good < 4 ? $#bad_good : 4)]]));

# the retry order by order happened: batches with a poisoned order in them failed whole
my $log = OSTest::read_file("$logs/error_log");
my @batches = $log =~ /a batch of (\d+) orders could not be committed \([^)]*poisoned order/g;
ok((grep { $_ > 1 } @batches), 'a batch with a poisoned order in it failed and was committed again one by one')
    or diag('batches that failed: ' . (join(', ', @batches) || 'none') . ' (needs LogLevel ordersync:info)');

# the store holds every accepted order, none of the refused, each with its delivery job
my $like = $pg ? "'%$tag-%'" : "'%$tag-%'";
my %stored = map { split /\|/ } split /\n/,
    sql("SELECT reference, latest_version FROM os_orders WHERE reference LIKE $like");
my @missing = grep { !exists $stored{(split ' ')[0]} } @good;
my @extra = grep { exists $stored{(split ' ')[0]} } @poison;
ok(!@missing && !@extra, 'the store holds every accepted order and no refused one')
    or diag(scalar(@missing) . ' missing, ' . scalar(@extra) . ' refused but stored');
my %jobs;
for (split /\n/, sql("SELECT o.reference, j.kind, j.version, j.state FROM os_jobs j JOIN os_orders o "
                     . "ON o.id = j.order_id WHERE o.reference LIKE $like")) {
    my ($ref, @job) = split /\|/;
    push @{ $jobs{$ref} }, join(' ', @job);
}
my @no_job = grep { my $ref = (split ' ')[0]; join(',', @{ $jobs{$ref} // [] }) ne 'delivery 1 queued' } @good;
is(scalar @no_job, 0, 'each accepted order has exactly one delivery job, version 1, queued')
    or diag(explain([map { my $ref = (split ' ')[0]; "$ref: " . join(',', @{ $jobs{$ref} // [] }) } @no_job[0 .. ($#no_job < 4 ? $#no_job : 4)]]));

# the store takes orders as before once the poison is gone
is(json_req('POST', '/orders', order_payload(reference => "$tag-last"), 'demo')->code, 202,
   'afterwards an order is accepted as usual');

# readers find out about the schema change (the trigger dropped) with their first query: the
# status route prepares again and answers, rather than 503
my @unread = grep { json_req('GET', '/orders/demo/' . (split ' ')[0], undef, 'demo')->code != 200 } @good;
is(scalar @unread, 0, 'right after the schema changed, every accepted order reads (200)');
