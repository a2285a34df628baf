# The Demand payload's field rules as a shop sees them through POST /ordersync/orders: each
# rule token (required, type, enum, format, min, max_length, max_items, unknown_field,
# country, currency, decimal, email, street_full) on each field family answers 422
# invalid-order naming the JSON path and the rule; several problems come back together;
# valid edge values are accepted (202).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use lib 't/lib';
use OSTest;

my $n = 0;
sub ref_ { return "fields-$$-" . ++$n }

# [name, code that changes the payload, expected path, expected rule]
my @invalid = (
    # enums
    ['status 5', sub { $_[0]{status} = 5 }, '$.status', 'enum'],
    ['status "2"', sub { $_[0]{status} = '2' }, '$.status', 'enum'],
    ['status "new"', sub { $_[0]{status} = 'new' }, '$.status', 'type'],
    ['type 2', sub { $_[0]{type} = 2 }, '$.type', 'enum'],
    ['type missing', sub { delete $_[0]{type} }, '$.type', 'required'],
    ['type ""', sub { $_[0]{type} = '' }, '$.type', 'required'],
    ['flag_partial 3', sub { $_[0]{flag_partial} = 3 }, '$.flag_partial', 'enum'],
    ['flag_partial -1', sub { $_[0]{flag_partial} = -1 }, '$.flag_partial', 'enum'],
    ['allocation_type 4', sub { $_[0]{items}[0]{allocation_type} = 4 },
     '$.items[0].allocation_type', 'enum'],
    ['allocation_type 0', sub { $_[0]{items}[0]{allocation_type} = 0 },
     '$.items[0].allocation_type', 'enum'],
    ['allocation_type "direct"', sub { $_[0]{items}[0]{allocation_type} = 'direct' },
     '$.items[0].allocation_type', 'type'],
    ['priority 1.5', sub { $_[0]{priority} = 1.5 }, '$.priority', 'type'],
    ['priority "high"', sub { $_[0]{priority} = 'high' }, '$.priority', 'type'],
    # currency
    ['currency "EURO"', sub { $_[0]{currency} = 'EURO' }, '$.currency', 'currency'],
    ['currency "E1R"', sub { $_[0]{currency} = 'E1R' }, '$.currency', 'currency'],
    ['currency 978', sub { $_[0]{currency} = 978 }, '$.currency', 'type'],
    ['currency missing', sub { delete $_[0]{currency} }, '$.currency', 'required'],
    # country
    ['shipping_country "XX"', sub { $_[0]{shipping_country} = 'XX' }, '$.shipping_country',
     'country'],
    ['shipping_country "UK"', sub { $_[0]{shipping_country} = 'UK' }, '$.shipping_country',
     'country'],
    ['shipping_country "NLD"', sub { $_[0]{shipping_country} = 'NLD' }, '$.shipping_country',
     'country'],
    ['billing_country "ZZ"', sub { $_[0]{billing_country} = 'ZZ' }, '$.billing_country',
     'country'],
    # dates
    ['created_at 2021-02-30', sub { $_[0]{created_at} = '2021-02-30 10:00:00' },
     '$.created_at', 'format'],
    ['created_at ISO with T', sub { $_[0]{created_at} = '2019-04-18T08:47:25' },
     '$.created_at', 'format'],
    ['created_at date only', sub { $_[0]{created_at} = '2019-04-18' }, '$.created_at', 'format'],
    ['delivery_at 2021-02-30', sub { $_[0]{delivery_at} = '2021-02-30 10:00:00' },
     '$.delivery_at', 'format'],
    ['delivery_at 2019-02-29', sub { $_[0]{delivery_at} = '2019-02-29 00:00:00' },
     '$.delivery_at', 'format'],
    ['delivery_at 24:00:00', sub { $_[0]{delivery_at} = '2019-04-18 24:00:00' },
     '$.delivery_at', 'format'],
    ['delivery_at as a number', sub { $_[0]{delivery_at} = 1555577245 }, '$.delivery_at', 'type'],
    # decimals
    ['cod_amount "1e3"', sub { $_[0]{cod_amount} = '1e3' }, '$.cod_amount', 'decimal'],
    ['cod_amount "1,50"', sub { $_[0]{cod_amount} = '1,50' }, '$.cod_amount', 'decimal'],
    ['cod_amount -1', sub { $_[0]{cod_amount} = -1 }, '$.cod_amount', 'min'],
    ['cod_amount true', sub { $_[0]{cod_amount} = JSON::PP::true }, '$.cod_amount', 'type'],
    ['weight "1kg"', sub { $_[0]{items}[0]{weight} = '1kg' }, '$.items[0].weight', 'decimal'],
    ['weight -1', sub { $_[0]{items}[0]{weight} = -1 }, '$.items[0].weight', 'min'],
    ['unit_price "5O.00"', sub { $_[0]{items}[0]{unit_price} = '5O.00' },
     '$.items[0].unit_price', 'decimal'],
    ['cost "abc"', sub { $_[0]{items}[0]{cost} = 'abc' }, '$.items[0].cost', 'decimal'],
    ['cost -1', sub { $_[0]{items}[0]{cost} = -1 }, '$.items[0].cost', 'min'],
    # qty
    ['qty 0', sub { $_[0]{items}[0]{qty} = 0 }, '$.items[0].qty', 'min'],
    ['qty -1', sub { $_[0]{items}[0]{qty} = -1 }, '$.items[0].qty', 'min'],
    ['qty "0"', sub { $_[0]{items}[0]{qty} = '0' }, '$.items[0].qty', 'min'],
    ['qty "abc"', sub { $_[0]{items}[0]{qty} = 'abc' }, '$.items[0].qty', 'decimal'],
    ['qty missing', sub { delete $_[0]{items}[0]{qty} }, '$.items[0].qty', 'required'],
    # required shipping fields, one by one
    (map { my $f = $_; ["$f missing", sub { delete $_[0]{$f} }, "\$.$f", 'required'] }
         qw(shipping_firstname shipping_lastname shipping_street shipping_housenumber
            shipping_postcode shipping_city shipping_country)),
    ['shipping_lastname ""', sub { $_[0]{shipping_lastname} = '' }, '$.shipping_lastname',
     'required'],
    ['shipping_city blanks', sub { $_[0]{shipping_city} = '   ' }, '$.shipping_city', 'required'],
    ['shipping_housenumber 12 (a number)', sub { $_[0]{shipping_housenumber} = 12 },
     '$.shipping_housenumber', 'type'],
    ['reference missing', sub { delete $_[0]{reference} }, '$.reference', 'required'],
    ['reference an array', sub { $_[0]{reference} = [] }, '$.reference', 'type'],
    # items
    ['items []', sub { $_[0]{items} = [] }, '$.items', 'min'],
    ['items missing', sub { delete $_[0]{items} }, '$.items', 'required'],
    ['items "x"', sub { $_[0]{items} = 'x' }, '$.items', 'type'],
    ['items {}', sub { $_[0]{items} = {} }, '$.items', 'type'],
    ['item sku missing', sub { delete $_[0]{items}[0]{sku} }, '$.items[0].sku', 'required'],
    ['item sku a number', sub { $_[0]{items}[0]{sku} = 5 }, '$.items[0].sku', 'type'],
    ['second item not an object', sub { push @{ $_[0]{items} }, 'SKU-2' }, '$.items[1]', 'type'],
    ['is_kit "yes"', sub { $_[0]{items}[0]{is_kit} = 'yes' }, '$.items[0].is_kit', 'type'],
    # unknown fields
    ['unknown top-level field', sub { $_[0]{colour} = 'red' }, '$.colour', 'unknown_field'],
    ['access_key inside the payload', sub { $_[0]{access_key} = 'x' }, '$.access_key',
     'unknown_field'],
    ['billing_method', sub { $_[0]{billing_method} = 'x' }, '$.billing_method', 'unknown_field'],
    ['unknown item field', sub { $_[0]{items}[0]{colour} = 'red' }, '$.items[0].colour',
     'unknown_field'],
    # limits
    ['51 items (OrderSyncMaxItems 50)',
     sub { $_[0]{items} = [ map { { sku => "S$_", qty => 1 } } 1 .. 51 ] },
     '$.items', 'max_items'],
    ['shipping_city of 1025 bytes', sub { $_[0]{shipping_city} = 'c' x 1025 },
     '$.shipping_city', 'max_length'],
    ['item description of 1025 bytes', sub { $_[0]{items}[0]{description} = 'd' x 1025 },
     '$.items[0].description', 'max_length'],
    ['reference of 65 characters', sub { $_[0]{reference} .= 'r' x 65 }, '$.reference',
     'max_length'],
    # e-mail
    ['shipping_email "ab.nl"', sub { $_[0]{shipping_email} = 'ab.nl' }, '$.shipping_email',
     'email'],
    ['shipping_email "a@b"', sub { $_[0]{shipping_email} = 'a@b' }, '$.shipping_email', 'email'],
    ['billing_email "a b@c.nl"', sub { $_[0]{billing_email} = 'a b@c.nl' }, '$.billing_email',
     'email'],
    # street_full
    ['shipping_street_full without a number',
     sub { delete @{ $_[0] }{qw(shipping_street shipping_housenumber)};
           $_[0]{shipping_street_full} = 'Nowhere' },
     '$.shipping_street_full', 'street_full', 'more'],
    ['billing_street_full without a number', sub { $_[0]{billing_street_full} = 'Nowhere' },
     '$.billing_street_full', 'street_full'],
    # passthrough objects
    ['packing.additional_labels "x"',
     sub { $_[0]{items}[0]{packing} = { additional_labels => 'x' } },
     '$.items[0].packing.additional_labels', 'type'],
    ['packing.additional_labels an object',
     sub { $_[0]{items}[0]{packing} = { additional_labels => { a => 'b' } } },
     '$.items[0].packing.additional_labels', 'type'],
    ['options "x"', sub { $_[0]{options} = 'x' }, '$.options', 'type'],
    ['options []', sub { $_[0]{options} = [] }, '$.options', 'type'],
    ['custom_options "x"', sub { $_[0]{items}[0]{custom_options} = 'x' },
     '$.items[0].custom_options', 'type'],
    ['customer_id 1.5', sub { $_[0]{customer_id} = 1.5 }, '$.customer_id', 'type'],
);

my @valid = (
    ['priority -5', sub { $_[0]{priority} = -5 }],
    ['priority "10"', sub { $_[0]{priority} = '10' }],
    ['flag_partial 2', sub { $_[0]{flag_partial} = 2 }],
    ['flag_partial ""', sub { $_[0]{flag_partial} = '' }],
    ['allocation_type 3', sub { $_[0]{items}[0]{allocation_type} = 3 }],
    ['allocation_type "1"', sub { $_[0]{items}[0]{allocation_type} = '1' }],
    ['is_kit "1"', sub { $_[0]{items}[0]{is_kit} = '1' }],
    ['is_kit false', sub { $_[0]{items}[0]{is_kit} = JSON::PP::false }],
    ['status 9 (cancel)', sub { $_[0]{status} = 9 }],
    ['status "8" (hold)', sub { $_[0]{status} = '8' }],
    ['type 1 (POS)', sub { $_[0]{type} = 1 }],
    ['currency "gbp"', sub { $_[0]{currency} = 'gbp' }],
    ['shipping_country "de"', sub { $_[0]{shipping_country} = 'de' }],
    ['delivery_at 2024-02-29', sub { $_[0]{delivery_at} = '2024-02-29 12:00:00' }],
    ['delivery_at ""', sub { $_[0]{delivery_at} = '' }],
    ['cod_amount "12.50"', sub { $_[0]{cod_amount} = '12.50' }],
    ['qty "0.5"', sub { $_[0]{items}[0]{qty} = '0.5' }],
    ['unit_price -3.5 (a discount line)', sub { $_[0]{items}[0]{unit_price} = -3.5 }],
    ['cost 0', sub { $_[0]{items}[0]{cost} = 0 }],
    ['weight ""', sub { $_[0]{items}[0]{weight} = '' }],
    ['50 items (the limit)', sub { $_[0]{items} = [ map { { sku => "S$_", qty => 1 } } 1 .. 50 ] }],
    ['shipping_city of 1024 bytes', sub { $_[0]{shipping_city} = 'c' x 1024 }],
    ['shipping_email with +tag and subdomain',
     sub { $_[0]{shipping_email} = 'first.last+tag@mail.example.com' }],
    ['shipping_street_full only',
     sub { delete @{ $_[0] }{qw(shipping_street shipping_housenumber)};
           $_[0]{shipping_street_full} = 'Hauptstr. 5 / 2' }],
    ['customer_id 1', sub { $_[0]{customer_id} = 1 }],
    ['options with @ keys', sub { $_[0]{options} = { '@pos_zone_id' => '', x => [1] } }],
    ['packing with additional_labels',
     sub { $_[0]{items}[0]{packing} = { additional_labels => [ { a => 'b' } ] } }],
    ['optional billing fields all ""',
     sub { $_[0]{"billing_$_"} = '' for qw(firstname lastname street housenumber postcode city
                                            country company phone email) }],
);

plan tests => @invalid + @valid + 10;

for my $c (@invalid) {
    my ($name, $change, $path, $rule, $more) = @$c;
    my $p = order_payload(reference => ref_());
    $change->($p);
    my $res = json_req('POST', '/orders', $p, 'demo');
    my $d = problem_ok($res, 422, 'invalid-order') || {};
    my @e = @{ $d->{errors} || [] };
    my ($hit) = grep { ($_->{path} // '') eq $path && ($_->{rule} // '') eq $rule } @e;
    (my $field = $path) =~ s/^\$\.//;
    my $good = $hit && ($more || @e == 1) && index($hit->{message} // '', $field) >= 0;
    ok($good, "$name: 422, $rule at $path");
    diag(explain(\@e)) unless $good;
}

for my $c (@valid) {
    my ($name, $change) = @$c;
    my $p = order_payload(reference => ref_());
    $change->($p);
    my $res = json_req('POST', '/orders', $p, 'demo');
    is($res->code, 202, "$name is accepted") or diag($res->content);
}

# several problems at once: all of them in one answer
my $p = order_payload(reference => ref_());
delete $p->{reference};
$p->{currency} = 'EURO';
delete $p->{shipping_city};
$p->{shiping_city} = 'typo';
$p->{items}[0]{qty} = '0';
delete $p->{items}[0]{sku};
my $res = json_req('POST', '/orders', $p, 'demo');
my $d = problem_ok($res, 422, 'invalid-order') || {};
ok(%$d, 'six problems: one 422 answer');
my %got = map { ("$_->{path} $_->{rule}" => 1) } @{ $d->{errors} || [] };
for my $want ('$.reference required', '$.currency currency', '$.shipping_city required',
              '$.shiping_city unknown_field', '$.items[0].qty min', '$.items[0].sku required') {
    ok($got{$want}, "reported together: $want");
}
is(scalar @{ $d->{errors} || [] }, 6, 'exactly the six problems, no more');
like($d->{detail} // '', qr/\b6 fields\b/, 'the detail counts them');
ok(!grep({ !length($_->{message} // '') } @{ $d->{errors} || [] }), 'each has a message');
